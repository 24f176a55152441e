"""A realistic synthetic world of IP-credit histories (the data behind ``ipcredit demo-data``).

Every entity carries a hidden, drifting risk propensity ``z`` (a fixed level, a mean-reverting monthly
random walk and, for some, one regime change: firms reform or deteriorate). ``z`` drives complaints,
takedowns, late annual reports, inspection failures and confirmed violations together, so the past
predicts the future, but only through noisy, recorded traces of ``z``. Some mechanisms are deliberately
non-additive (a filing burst leads to an abnormal-filing finding mostly when the entity's grant ratio is
low; platforms refer repeat takedowns to regulators only past a threshold; agencies' misconduct grows with
their filing volume; young firms with a high propensity are fly-by-night), which a tree ensemble can find
and a one-feature-at-a-time scorecard cannot fully.

The generating process, its parameters and what a model can and cannot learn from it are described in
``docs/synthetic-world.md``. Everything here is vectorised with numpy over entity x month matrices or
over arrays of events; Python loops run over months, years or blocks of entities, never over events.

Entities are simulated in fixed blocks of ``_BLOCK`` entities, each with its own seed, so the content does
not depend on ``chunk_size``; ids (entity codes, ``E``-numbered event ids) are global.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import ADVERSE_CODES, ENTITIES, EVENT_CODES, EVENTS, INDUSTRIES, LISTS
from features.uscc import ALPHABET, WEIGHTS

__all__ = ["World", "generate", "generate_chunks"]


@dataclass(frozen=True)
class World:
    """The three contract tables of a synthetic dataset (columns in contract order)."""

    entities: pd.DataFrame
    events: pd.DataFrame
    lists: pd.DataFrame


# ---------------------------------------------------------------------------------------------------
# Parameters. Rates are per entity-month unless the name says otherwise; ``z`` is the hidden propensity.
# ---------------------------------------------------------------------------------------------------
_BLOCK = 10_000  # entities simulated together under one seed
_BURN_IN_MONTHS = 24  # simulated before ``start`` so the window opens on a world already in motion
_EVENT_ID_DIGITS = 10
MAX_BATCHES = 12.0  # filing batches per month of the heaviest filers

P_AGENCY = 0.08
P_INDIVIDUAL = 0.12  # of enterprises: individual businesses (个体工商户, code type 92)
P_LAW_FIRM = 0.15  # of agencies: law firms (code 31), the rest are agency companies/partnerships (91)
P_QUIET = {"enterprise": 0.16, "individual": 0.20, "agency": 0.10}  # never do anything the data sees

# (code, name prefix, share of entities, regional risk shift)
REGIONS: tuple[tuple[str, str, float, float], ...] = (
    ("440300", "深圳", 9.0, 0.10),
    ("320500", "苏州", 6.5, 0.00),
    ("330100", "杭州", 6.0, 0.05),
    ("440100", "广州", 6.0, 0.10),
    ("110105", "北京", 4.5, -0.05),
    ("110108", "北京", 4.0, -0.10),
    ("310115", "上海", 5.5, -0.05),
    ("410100", "郑州", 4.5, 0.05),
    ("510100", "成都", 4.0, 0.00),
    ("420100", "武汉", 3.5, 0.00),
    ("370200", "青岛", 3.0, 0.00),
    ("441900", "东莞", 3.5, 0.15),
    ("440600", "佛山", 3.0, 0.10),
    ("330200", "宁波", 2.5, 0.05),
    ("330782", "义乌", 2.0, 0.30),
    ("350200", "厦门", 2.0, 0.00),
    ("350500", "泉州", 2.5, 0.20),
    ("320100", "南京", 3.0, -0.05),
    ("340100", "合肥", 2.5, 0.00),
    ("430100", "长沙", 2.5, 0.00),
    ("610100", "西安", 2.5, 0.00),
    ("120116", "天津", 2.0, 0.00),
    ("500112", "重庆", 2.0, 0.05),
    ("370100", "济南", 2.0, 0.00),
    ("210100", "沈阳", 1.5, 0.05),
    ("210200", "大连", 1.5, 0.00),
    ("210600", "丹东", 1.0, 0.05),
    ("410300", "洛阳", 1.0, 0.05),
    ("320900", "盐城", 1.0, 0.05),
    ("130100", "石家庄", 1.5, 0.10),
    ("360100", "南昌", 1.0, 0.05),
    ("530100", "昆明", 1.0, 0.05),
    ("450100", "南宁", 1.0, 0.10),
    ("220100", "长春", 1.0, 0.05),
    ("230100", "哈尔滨", 1.0, 0.05),
    ("150800", "巴彦淖尔", 0.3, 0.10),
)

# GB/T 4754 sections: shares of enterprises (companies) and of individual businesses.
_IND_COMPANY = dict(
    A=1.8, B=0.4, C=30.0, D=0.6, E=5.0, F=21.0, G=2.8, H=2.5, I=10.0, J=0.6,
    K=2.2, L=8.0, M=9.5, N=0.9, O=1.2, P=1.0, Q=0.8, R=1.6, S=0.09, T=0.01,
)  # fmt: skip
_IND_INDIVIDUAL = dict(A=3.0, C=6.0, F=58.0, H=14.0, I=4.0, O=10.0, R=5.0)
_ONLINE_BY_IND = dict(F=0.52, I=0.38, C=0.22, H=0.22, R=0.20, L=0.12, M=0.10, O=0.10)
_ONLINE_OTHER = 0.06
_PATENT_FILER_BY_IND = dict(C=0.45, M=0.50, I=0.35, D=0.30, B=0.20, E=0.20, Q=0.15)
_TM_FILER_BY_IND = dict(F=0.50, C=0.35, I=0.40, H=0.30, R=0.30, M=0.25, L=0.25)
# Industry multipliers of infringement and counterfeit-patent penalty rates.
_IP_BY_IND = dict(C=1.4, F=1.6, I=0.8, M=0.6, L=0.9, R=1.2, H=0.7)
_CP_BY_IND = dict(C=1.5, F=1.3, M=1.0)

# Hidden propensity z = level + OU drift + regime jump.
Z_DRIFT_PHI = 0.96
Z_DRIFT_SIGMA = 0.17
P_REGIME_CHANGE = 0.25
REGIME_JUMP_SD = 0.9

# Direct hazards of confirmed violations at z = 0 (per month).
H_INFRINGEMENT = 0.0006
H_COUNTERFEIT = 0.00025
H_JUDGMENT = 0.0003
H_AGENCY = 0.003
H_ABNORMAL_BASE = 0.0002
H_FALSE_MATERIALS = 0.00012
H_COMPLAINT = 0.003
H_TAKEDOWN = 0.010
H_COMMITMENT = 0.002
H_INSPECTION = 0.0025
P_REPAIR_LOGIT = 0.0  # logit of applying for credit repair at z = 0
P_REPEAT_LOGIT = -2.3  # logit of a repeat penalty at z = 0, per penalty (two generations)


# ---------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------
def generate_chunks(
    n_entities: int,
    seed: int = 0,
    *,
    start: date = date(2016, 1, 1),
    end: date = date(2025, 12, 31),
    chunk_size: int = 100_000,
) -> Iterator[World]:
    """Yield the synthetic world in chunks of at most ``chunk_size`` entities with all their rows.

    The result is determined by ``(n_entities, seed, start, end)``; it does not depend on ``chunk_size``.
    Entity ids and event ids are unique across chunks. Nothing is recorded or entered after ``end``; no
    event occurs before ``start``. Memory is bounded by one chunk.
    """
    if n_entities < 0:
        raise ValueError(f"n_entities must be >= 0; got {n_entities}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    if end < start:
        raise ValueError(f"end must be on or after start; got start={start}, end={end}")
    grid = _Grid(start, end)
    id_key = _IdKey(seed)
    pending: list[_Piece] = []
    pending_n = 0
    next_event = 1
    for block_index, block_start in enumerate(range(0, n_entities, _BLOCK)):
        m = min(_BLOCK, n_entities - block_start)
        rng = np.random.default_rng(np.random.SeedSequence([seed, block_index]))
        piece = _simulate_block(m, block_start, rng, grid, id_key)
        while piece is not None:
            take = chunk_size - pending_n
            head, piece = piece.split(take)
            pending.append(head)
            pending_n += head.n
            if pending_n == chunk_size:
                world, next_event = _assemble(pending, next_event)
                yield world
                pending, pending_n = [], 0
    if pending or n_entities == 0:
        world, next_event = _assemble(pending, next_event)
        yield world


def generate(n_entities: int, seed: int = 0, **kw: object) -> World:
    """The whole synthetic world in memory: ``generate_chunks`` concatenated."""
    chunks = list(generate_chunks(n_entities, seed, **kw))  # type: ignore[arg-type]
    if len(chunks) == 1:
        return chunks[0]
    return World(
        entities=pd.concat([c.entities for c in chunks], ignore_index=True),
        events=pd.concat([c.events for c in chunks], ignore_index=True),
        lists=pd.concat([c.lists for c in chunks], ignore_index=True),
    )


# ---------------------------------------------------------------------------------------------------
# Time grid and small helpers
# ---------------------------------------------------------------------------------------------------
_EPOCH = np.datetime64("1970-01-01", "D")
_NULL_DAY = np.iinfo(np.int64).min  # becomes NaT
_CODE = {c: i for i, c in enumerate(EVENT_CODES)}
_ADVERSE_IDX = np.array([_CODE[c] for c in ADVERSE_CODES])
_LIST_CODES = ("red", "untrustworthy", "serious_violation", "abnormal_operation")
_LIST = {c: i for i, c in enumerate(_LIST_CODES)}


def _day(d: date) -> int:
    return int((np.datetime64(d, "D") - _EPOCH).astype(np.int64))


class _Grid:
    """Monthly grid from ``start`` minus the burn-in to ``end``; days are int64 days since 1970-01-01."""

    def __init__(self, start: date, end: date):
        self.start = _day(start)
        self.end = _day(end)
        first = np.datetime64(start, "M") - _BURN_IN_MONTHS
        months = np.arange(first, np.datetime64(end, "M") + 1)
        bounds = np.append(months, months[-1] + 1).astype("datetime64[D]")
        days = (bounds - _EPOCH).astype(np.int64)
        self.first = days[:-1]
        self.length = np.diff(days)
        self.n = len(months)
        self.year = months.astype("datetime64[Y]").astype(np.int64) + 1970
        self.years = np.unique(self.year)

    def month_of(self, day: np.ndarray) -> np.ndarray:
        """Grid month index of each day, clipped to the grid."""
        return np.clip(np.searchsorted(self.first, day, side="right") - 1, 0, self.n - 1)

    def random_day(self, rng: np.random.Generator, month: np.ndarray) -> np.ndarray:
        return self.first[month] + (rng.random(len(month)) * self.length[month]).astype(np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _poisson(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    """Poisson counts for a matrix of mostly tiny rates, by inverse CDF (several times faster than
    ``rng.poisson`` when nearly every cell is zero)."""
    lam = np.asarray(lam, dtype=np.float64)
    u = rng.random(lam.shape)
    p = np.exp(-lam)
    counts = np.zeros(lam.shape, dtype=np.int64)
    idx = np.flatnonzero(u > p)
    if idx.size == 0:
        return counts
    lam_i, u_i, p_i = lam.flat[idx], u.flat[idx], p.flat[idx]
    cdf = p_i.copy()
    k = np.zeros(idx.size, dtype=np.int64)
    todo = np.arange(idx.size)
    while todo.size:
        k[todo] += 1
        p_i[todo] *= lam_i[todo] / k[todo]
        cdf[todo] += p_i[todo]
        todo = todo[(u_i[todo] > cdf[todo]) & (k[todo] < 1000)]
    counts.flat[idx] = k
    return counts


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(entity, month) of every unit in an entity x month count matrix."""
    flat = np.flatnonzero(counts)
    rep = np.repeat(flat, counts.flat[flat])
    return rep // counts.shape[1], rep % counts.shape[1]


def _lookup(table: dict[str, float], keys: np.ndarray, default: float) -> np.ndarray:
    values = np.full(len(INDUSTRIES), default)
    for k, v in table.items():
        values[INDUSTRIES.index(k)] = v
    return values[keys]


def _trailing(mat: np.ndarray, months: int) -> np.ndarray:
    """Sum of the previous ``months`` columns (excluding the current one) for every cell."""
    c = np.zeros((mat.shape[0], mat.shape[1] + 1), dtype=np.float64)
    np.cumsum(mat, axis=1, out=c[:, 1:])
    lo = np.maximum(np.arange(mat.shape[1]) - months, 0)
    return c[:, np.arange(mat.shape[1])] - c[:, lo]


def _bincount2(ent: np.ndarray, month: np.ndarray, weights: np.ndarray | None, shape: tuple[int, int]):
    flat = np.bincount(ent * shape[1] + month, weights=weights, minlength=shape[0] * shape[1])
    return flat.reshape(shape)


def _round_money(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    x = np.clip(x, lo, hi)
    step = np.where(x >= 100_000, 10_000, np.where(x >= 10_000, 1_000, 100))
    return np.round(x / step) * step


# ---------------------------------------------------------------------------------------------------
# Unified social credit codes: a seeded bijection of the global entity index keeps them unique
# ---------------------------------------------------------------------------------------------------
_ALPHA = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
_VALUE = np.full(256, -1, dtype=np.int64)
_VALUE[_ALPHA] = np.arange(31)
_W = np.array(WEIGHTS, dtype=np.int64)
_ORG_W = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)  # GB 11714 organisation-code weights


class _IdKey:
    def __init__(self, seed: int):
        r = np.random.default_rng(np.random.SeedSequence([seed, 0x1D5]))
        self.a_new = int(r.integers(10**6, 3 * 10**8)) | 1
        if self.a_new % 31 == 0:
            self.a_new += 2
        self.b_new = int(r.integers(0, 31**7))
        a_old = int(r.integers(10**5, 10**7)) | 1
        self.a_old = a_old + 2 if a_old % 5 == 0 else a_old
        self.b_old = int(r.integers(0, 10**8))
        self.mix = r.integers(1, 31, size=8)


def _digits(x: np.ndarray, base: int, width: int) -> np.ndarray:
    out = np.empty((len(x), width), dtype=np.int64)
    for i in range(width - 1, -1, -1):
        out[:, i] = x % base
        x = x // base
    return out


def _codes(global_index: np.ndarray, prefix: np.ndarray, region: np.ndarray, new_style: np.ndarray, key: _IdKey):
    """18-char codes: authority+type (2), region (6), organisation code (9), check character."""
    n = len(global_index)
    x = global_index.astype(np.int64)
    # New registrations (since the 2015 reform): "MA" + 7 characters from the alphabet.
    d = _digits((key.a_new * x + key.b_new) % 31**7, 31, 7)
    for i in range(1, 7):  # an invertible mixing so that neighbours do not look alike
        d[:, i] = (d[:, i] + key.mix[i] * d[:, i - 1]) % 31
    new_org = np.concatenate([np.full((n, 2), [_VALUE[ord("M")], _VALUE[ord("A")]]), d], axis=1)
    # Older entities keep their 8-digit organisation code and its GB 11714 check digit.
    o = _digits((key.a_old * x + key.b_old) % 10**8, 10, 8)
    for i in range(1, 8):
        o[:, i] = (o[:, i] + key.mix[i] * o[:, i - 1]) % 10
    c = 11 - (o @ _ORG_W) % 11
    check = np.where(c == 10, _VALUE[ord("X")], np.where(c == 11, 0, c))
    old_org = np.concatenate([o, check[:, None]], axis=1)
    org = np.where(new_style[:, None], new_org, old_org)
    pre = _VALUE[np.frombuffer("".join(prefix).encode(), dtype=np.uint8).reshape(n, 2)]
    reg = np.frombuffer("".join(region).encode(), dtype=np.uint8).reshape(n, 6) - ord("0")
    body = np.concatenate([pre, reg, org], axis=1)
    chk = (31 - (body @ _W) % 31) % 31
    full = np.concatenate([body, chk[:, None]], axis=1)
    return _ALPHA[full].view("S18").ravel().astype(str)


# ---------------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------------
_TRADE_1 = np.array(list("华鑫盛恒瑞泰宏博创远达信诚金海天中新光明永德嘉丰隆昌兴源汇联智云锐凯晟辰宇航正"))
_TRADE_2 = np.array(list("华鑫盛恒瑞泰宏博创远达信诚金海天通美佳和成力邦捷越腾峰川瀚锦翔安益科尚禾"))
_IND_WORDS: dict[str, tuple[str, ...]] = {
    "A": ("农业开发", "农业科技", "生态农业"),
    "C": ("机械制造", "电子", "精密机械", "新材料", "化工", "食品", "服饰", "塑料制品", "汽车零部件", "医疗器械"),
    "E": ("建设工程", "建筑工程", "装饰工程"),
    "F": ("商贸", "贸易", "进出口", "电子商务", "供应链管理"),
    "G": ("物流", "运输"),
    "H": ("餐饮管理", "酒店管理"),
    "I": ("信息技术", "网络科技", "软件", "数据科技"),
    "K": ("房地产开发", "物业管理"),
    "L": ("商务咨询", "企业管理", "广告", "文化传播"),
    "M": ("科技", "生物科技", "技术服务", "检测技术", "工业设计"),
    "R": ("文化传媒", "影视文化"),
}
_IND_GENERIC = ("实业", "发展", "科技", "控股")
_SHOP_WORDS = ("百货商行", "服装店", "电子产品经营部", "日用品店", "网店", "食品经营部", "五金店")
_AGENCY_WORDS = ("知识产权代理有限公司", "专利代理事务所（普通合伙）", "商标代理有限公司", "知识产权服务有限公司")


def _pick(rng: np.random.Generator, options: np.ndarray, n: int) -> np.ndarray:
    return options[rng.integers(0, len(options), n)]


def _names(rng, city, industry_idx, individual, agency, law, capital) -> np.ndarray:
    n = len(city)
    trade = np.strings.add(_pick(rng, _TRADE_1, n), _pick(rng, _TRADE_2, n))
    city_form = np.where(rng.random(n) < 0.5, np.strings.add(city, "市"), city)
    words = np.array([""] * n, dtype=object)
    for letter_i, letter in enumerate(INDUSTRIES):
        sel = industry_idx == letter_i
        if sel.any():
            pool = np.array(_IND_WORDS.get(letter, _IND_GENERIC))
            words[sel] = _pick(rng, pool, int(sel.sum()))
    words = words.astype(str)
    suffix = np.where(
        capital > 5000, "股份有限公司", np.where(rng.random(n) < 0.08, "有限责任公司", "有限公司")
    )
    name = np.strings.add(np.strings.add(np.strings.add(city_form, trade), words), suffix)
    shop = np.strings.add(np.strings.add(city_form, trade), _pick(rng, np.array(_SHOP_WORDS), n))
    firm = np.strings.add(np.strings.add(city_form, trade), _pick(rng, np.array(_AGENCY_WORDS), n))
    lawyer = np.strings.add(np.strings.add(city, trade), "律师事务所")
    name = np.where(individual, shop, name)
    name = np.where(agency & ~law, firm, name)
    return np.where(law, lawyer, name)


# ---------------------------------------------------------------------------------------------------
# Event and list accumulators
# ---------------------------------------------------------------------------------------------------
# Recording lags in days: (low, high) uniform, or ("exp", minimum, mean) for a long right tail.
_LAG: dict[str, tuple] = {
    "patent_filed": (0, 2),
    "patent_granted": (0, 0),
    "trademark_filed": (0, 3),
    "abnormal_patent_filing": (30, 180),
    "malicious_trademark_filing": (30, 180),
    "infringement_penalty": ("exp", 3, 12),
    "counterfeit_patent_penalty": ("exp", 3, 12),
    "infringement_judgment": (60, 270),
    "agency_misconduct": ("exp", 5, 15),
    "false_materials": (10, 90),
    "commitment_breach": (10, 90),
    "refusal_to_comply": (10, 60),
    "inspection_failed": (1, 20),
    "inspection_passed": (1, 20),
    "commitment_signed": (0, 1),
    "honor_demonstration": (0, 7),
    "honor_advantage": (0, 7),
    "ipms_certified": (5, 30),
    "complaint_received": (0, 5),
    "platform_takedown": (0, 7),
    "annual_report_late": (1, 10),
}


class _Events:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.parts: list[list[np.ndarray]] = []
        self.part_of: dict[str, int] = {}

    def add(self, code: str, ent, occ, qty=None, amt=None) -> np.ndarray:
        """Add events of one type (occurred on day ``occ``); returns their recorded days."""
        n = len(ent)
        lag = _LAG[code]
        if lag[0] == "exp":
            days = np.minimum(lag[1] + self.rng.exponential(lag[2], n).astype(np.int64), 120)
        else:
            days = self.rng.integers(lag[0], lag[1] + 1, n)
        rec = occ + days
        qty = np.ones(n, dtype=np.int64) if qty is None else qty.astype(np.int64)
        amt = np.full(n, np.nan) if amt is None else amt
        self.part_of[code] = len(self.parts)
        typ = np.full(n, _CODE[code], np.int8)
        self.parts.append([typ, ent, occ, rec, qty, amt, np.full(n, _NULL_DAY)])
        return rec

    def repair(self, code: str, repaired: np.ndarray) -> None:
        """Set ``repaired_on`` for the (single) part of type ``code``."""
        self.parts[self.part_of[code]][6] = repaired

    def arrays(self) -> list[np.ndarray]:
        """typ, ent, occ, rec, qty, amt, rep over all parts."""
        dtypes = (np.int8, np.int64, np.int64, np.int64, np.int64, np.float64, np.int64)
        if not self.parts:
            return [np.zeros(0, dtype=d) for d in dtypes]
        return [np.concatenate(c).astype(d, copy=False) for c, d in zip(zip(*self.parts, strict=True), dtypes, strict=True)]


class _Lists:
    def __init__(self):
        self.parts: list[tuple] = []

    def add(self, code: str, ent, entered, removed) -> None:
        n = len(ent)
        self.parts.append((np.full(n, _LIST[code], np.int8), ent, entered, removed))

    def arrays(self):
        if not self.parts:
            z = np.zeros(0, dtype=np.int64)
            return z.astype(np.int8), z, z, z
        return tuple(np.concatenate(c) for c in zip(*self.parts, strict=True))


# ---------------------------------------------------------------------------------------------------
# One block of entities
# ---------------------------------------------------------------------------------------------------
@dataclass
class _Piece:
    """A slice of a simulated block: entity rows and their events and lists, as frames without ids."""

    n: int
    entities: pd.DataFrame
    events: pd.DataFrame  # without event_id; sorted by entity
    lists: pd.DataFrame
    ev_ent: np.ndarray  # block-local entity index of each event row (sorted)
    li_ent: np.ndarray
    offset: int = 0  # block-local index of this piece's first entity

    def split(self, k: int) -> tuple[_Piece, _Piece | None]:
        if k >= self.n:
            return self, None
        cut = self.offset + k
        e = np.searchsorted(self.ev_ent, cut)
        li = np.searchsorted(self.li_ent, cut)
        head = _Piece(
            k, self.entities.iloc[:k], self.events.iloc[:e], self.lists.iloc[:li], self.ev_ent[:e],
            self.li_ent[:li], self.offset,
        )  # fmt: skip
        tail = _Piece(
            self.n - k, self.entities.iloc[k:], self.events.iloc[e:], self.lists.iloc[li:], self.ev_ent[e:],
            self.li_ent[li:], cut,
        )  # fmt: skip
        return head, tail


def _assemble(pieces: list[_Piece], next_event: int) -> tuple[World, int]:
    if pieces:
        ent = pd.concat([p.entities for p in pieces], ignore_index=True)
        ev = pd.concat([p.events for p in pieces], ignore_index=True)
        li = pd.concat([p.lists for p in pieces], ignore_index=True)
    else:
        ent, ev, li = _empty(ENTITIES), _empty(EVENTS).drop(columns="event_id"), _empty(LISTS)
    n = len(ev)
    numbers = pa.array(np.arange(next_event, next_event + n, dtype=np.int64))
    ids = pc.binary_join_element_wise(
        "E", pc.utf8_lpad(pc.cast(numbers, pa.string()), width=_EVENT_ID_DIGITS, padding="0"), ""
    )
    ev.insert(0, "event_id", _str_series(ids))
    return World(ent[ENTITIES.column_names], ev[EVENTS.column_names], li[LISTS.column_names]), next_event + n


def _empty(table) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in table.column_names})


_STR = pd.StringDtype("pyarrow", na_value=np.nan)


def _str_series(values) -> pd.Series:
    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, type=pa.string())
    return pd.Series(pd.array(arr, dtype=_STR))


def _dates(days: np.ndarray) -> np.ndarray:
    d = np.asarray(days, dtype=np.int64)
    out = d.view("datetime64[D]").copy()
    return out.astype("datetime64[s]")


def _simulate_block(m: int, offset: int, rng: np.random.Generator, g: _Grid, key: _IdKey) -> _Piece:
    M = g.n
    t_idx = np.arange(M)

    # ---------------- entities ----------------
    agency = rng.random(m) < P_AGENCY
    u = rng.random(m)
    indiv = ~agency & (u < P_INDIVIDUAL)
    law = agency & (u < P_LAW_FIRM)
    ind = np.empty(m, dtype=np.int64)
    letters = np.array([INDUSTRIES.index(k) for k in _IND_COMPANY])
    w = np.array(list(_IND_COMPANY.values()))
    company = ~agency & ~indiv
    ind[company] = rng.choice(letters, int(company.sum()), p=w / w.sum())
    letters_i = np.array([INDUSTRIES.index(k) for k in _IND_INDIVIDUAL])
    w_i = np.array(list(_IND_INDIVIDUAL.values()))
    ind[indiv] = rng.choice(letters_i, int(indiv.sum()), p=w_i / w_i.sum())
    ind[agency] = np.where(rng.random(int(agency.sum())) < 0.7, INDUSTRIES.index("M"), INDUSTRIES.index("L"))
    ind[law] = INDUSTRIES.index("L")

    rw = np.array([r[2] for r in REGIONS])
    reg_i = rng.choice(len(REGIONS), m, p=rw / rw.sum())
    region = np.array([r[0] for r in REGIONS])[reg_i]
    city = np.array([r[1] for r in REGIONS])[reg_i]
    region_shift = np.array([r[3] for r in REGIONS])[reg_i]

    # Registration: some long established, a steady (slightly growing) stream inside the window.
    before = rng.random(m) < np.where(indiv, 0.25, 0.45)
    age_days = (rng.exponential(8.0, m) * 365.25).astype(np.int64) + 1
    reg_old = np.maximum(g.start - age_days, _day(date(1980, 1, 1)) + rng.integers(0, 3650, m))
    reg_new = g.start + (rng.random(m) ** 0.85 * (g.end - g.start + 1)).astype(np.int64)
    reg_day = np.where(before, reg_old, reg_new)
    reg_month = np.searchsorted(g.first, reg_day, side="right") - 1  # may be < 0 (before the grid)
    alive = t_idx[None, :] >= reg_month[:, None]
    age_m = t_idx[None, :] - reg_month[:, None]

    cap_mu = np.where(agency, np.log(50), np.where(indiv, np.log(3), np.log(150)))
    cap_mu = cap_mu + np.where(ind == INDUSTRIES.index("C"), 0.4, 0.0)
    log_cap = cap_mu + rng.normal(0, np.where(indiv, 1.1, 1.5), m)
    capital = np.exp(log_cap)
    nice = np.array([1, 2, 3, 5, 10])
    mag = 10.0 ** np.floor(np.log10(capital))
    nice_val = nice[np.argmin(np.abs(capital[:, None] / mag[:, None] - nice[None, :]), axis=1)] * mag
    capital = np.where(
        rng.random(m) < 0.55, nice_val, np.where(capital < 10, np.round(capital, 2), np.round(capital))
    )
    capital = np.maximum(capital, 0.01)
    cap_null = rng.random(m) < np.where(indiv, 0.3, 0.02)

    p_online = _lookup(_ONLINE_BY_IND, ind, _ONLINE_OTHER) + np.where(indiv, 0.15, 0.0)
    p_online = np.where(agency, 0.05, p_online)
    online = rng.random(m) < p_online

    p_quiet = np.where(agency, P_QUIET["agency"], np.where(indiv, P_QUIET["individual"], P_QUIET["enterprise"]))
    quiet = rng.random(m) < p_quiet
    active = ~quiet

    # ---------------- hidden propensity ----------------
    a = (
        rng.normal(0, 1, m)
        + 0.25 * indiv
        + 0.2 * online
        + 0.15 * agency
        - 0.18 * (log_cap - np.log(150)) / 1.5
        + region_shift
    )
    Z = np.empty((m, M), dtype=np.float32)
    drift = rng.normal(0, Z_DRIFT_SIGMA / np.sqrt(1 - Z_DRIFT_PHI**2), m)
    for t in range(M):
        drift = Z_DRIFT_PHI * drift + rng.normal(0, Z_DRIFT_SIGMA, m)
        Z[:, t] = drift
    jump = np.where(rng.random(m) < P_REGIME_CHANGE, rng.normal(0, REGIME_JUMP_SD, m), 0.0)
    tau = rng.integers(0, M, m)
    Z += (a[:, None] + jump[:, None] * (t_idx[None, :] >= tau[:, None])).astype(np.float32)
    E = np.exp(Z)
    # Young firms with a bad disposition: the fly-by-night effect (an interaction, not a main effect).
    young_bad = (age_m >= 0) & (age_m < 24) & (a[:, None] > 0.5)
    era = np.clip(0.85 + 0.035 * (g.year - 2016), 0.7, 1.3)[None, :]  # enforcement intensifies
    adverse_mult = alive * np.where(young_bad, 2.5, 1.0) * era * np.where(quiet, 0.1, 1.0)[:, None]

    # Dormancy: some entities stop operating at some point (filings and trading stop, reports lapse).
    dormant_from = np.where(rng.random(m) < 0.12, rng.integers(0, M, m), M + 1)
    dormant = t_idx[None, :] >= dormant_from[:, None]

    ev = _Events(rng)
    lists = _Lists()

    # ---------------- filings ----------------
    patent_filer = active & (
        rng.random(m)
        < np.where(agency, np.where(law, 0.35, 0.75), np.where(indiv, 0.02, _lookup(_PATENT_FILER_BY_IND, ind, 0.08)))
    )
    tm_filer = active & (
        rng.random(m) < np.where(agency, 0.8, np.where(indiv, 0.12, _lookup(_TM_FILER_BY_IND, ind, 0.15)))
    )
    size = np.exp(0.25 * (log_cap - np.log(150)))
    lam_p = np.minimum(np.where(agency, 1.2, 0.20) * size * np.exp(rng.normal(0, 1.3, m)), MAX_BATCHES) * patent_filer
    lam_t = np.minimum(np.where(agency, 1.0, 0.13) * size * np.exp(rng.normal(0, 1.2, m)), MAX_BATCHES) * tm_filer
    batch_p = 1 + np.exp(np.log(np.where(agency, 3.0, 1.2)) + rng.normal(0, 0.7, m))
    batch_t = 1 + np.exp(np.log(np.where(agency, 2.5, 0.8)) + rng.normal(0, 0.8, m))
    grant_ratio = np.clip(rng.beta(6, 5, m) - 0.06 * a, 0.05, 0.95)

    # Filing activity switches on and off (gaps of months to years).
    on = np.empty((m, M), dtype=bool)
    state = rng.random(m) < 0.75
    for t in range(M):
        flip = rng.random(m) < np.where(state, 1 / 36, 1 / 15)
        state = state ^ flip
        on[:, t] = state
    working = alive & ~dormant & on

    # patents
    cnt = _poisson(rng, lam_p[:, None] * working)
    pe, pm = _expand(cnt)
    pq = rng.geometric(1 / batch_p[pe])
    p_occ = g.random_day(rng, pm)
    p_g = grant_ratio[pe]
    # filing bursts (quarters with a sudden mass of applications), common in the subsidy era
    q_n = (M + 2) // 3
    qcol = np.minimum(np.arange(q_n) * 3, M - 1)
    q_year = g.year[qcol]
    q_alive = alive[:, qcol] & ~dormant[:, qcol]
    burst_era = np.where(q_year < 2021, 1.0, 0.35)[None, :]
    pb = _sigmoid(-6.9 + 0.9 * a + 1.3 * agency + 0.8 * patent_filer)[:, None] * burst_era * q_alive * active[:, None]
    be, bq = np.nonzero(rng.random((m, q_n)) < pb)
    b_total = np.clip(np.exp(np.log(60) + rng.normal(0, 0.9, len(be))), 15, 2000).astype(np.int64)
    b_parts = 1 + rng.binomial(2, 0.5, len(be))
    bi = np.repeat(np.arange(len(be)), b_parts)
    bm = np.minimum(bq[bi] * 3 + rng.integers(0, 3, len(bi)), M - 1)
    bqty = np.maximum(b_total[bi] // b_parts[bi], 5)
    b_occ = g.random_day(rng, bm)
    all_pe = np.concatenate([pe, be[bi]])
    all_pq = np.concatenate([pq, bqty])
    all_pocc = np.concatenate([p_occ, b_occ])
    ev.add("patent_filed", all_pe, all_pocc, all_pq)
    # grants follow filings: a share of each batch, 5 to 36 months later
    gratio = np.concatenate([p_g, grant_ratio[be[bi]] * 0.25])
    granted = rng.binomial(all_pq, gratio)
    sel = granted > 0
    utility = rng.random(int(sel.sum())) < 0.6
    glag = np.where(utility, rng.integers(150, 400, utility.size), rng.integers(500, 1100, utility.size))
    ev.add("patent_granted", all_pe[sel], all_pocc[sel] + glag, granted[sel])

    # abnormal-filing findings after bursts: likely when the grant ratio is low (quality is poor)
    q_end = g.first[np.minimum(bq * 3 + 2, M - 1)] + g.length[np.minimum(bq * 3 + 2, M - 1)]
    detect = np.where(q_year[bq] < 2021, 0.45, 1.0)  # CNIPA's 2021 campaign against abnormal filings
    p_find = _sigmoid(-0.8 + 6.0 * (0.4 - grant_ratio[be]) + 0.6 * agency[be] + 0.4 * a[be]) * detect
    found = rng.random(len(be)) < p_find
    ap_ent = be[found]
    ap_occ = q_end[found] + rng.integers(0, 150, int(found.sum()))
    ap_grave = b_total[found] >= 300

    # trademarks
    cnt = _poisson(rng, lam_t[:, None] * working)
    te, tm = _expand(cnt)
    tq = rng.geometric(1 / batch_t[te])
    pbt = _sigmoid(-7.0 + 0.9 * a + 1.3 * agency + 0.8 * tm_filer)[:, None] * q_alive * active[:, None]
    tbe, tbq = np.nonzero(rng.random((m, q_n)) < pbt)
    tb_total = np.clip(np.exp(np.log(80) + rng.normal(0, 1.0, len(tbe))), 20, 3000).astype(np.int64)
    tb_parts = 1 + rng.binomial(2, 0.5, len(tbe))
    tbi = np.repeat(np.arange(len(tbe)), tb_parts)
    tbm = np.minimum(tbq[tbi] * 3 + rng.integers(0, 3, len(tbi)), M - 1)
    ev.add(
        "trademark_filed",
        np.concatenate([te, tbe[tbi]]),
        np.concatenate([g.random_day(rng, tm), g.random_day(rng, tbm)]),
        np.concatenate([tq, np.maximum(tb_total[tbi] // tb_parts[tbi], 5)]),
    )
    tq_end_m = np.minimum(tbq * 3 + 2, M - 1)
    detect_t = np.where(g.year[tq_end_m] < 2019, 0.4, 1.0)  # Trademark Law art. 4 amended in 2019
    p_mal = _sigmoid(-1.5 + 0.7 * a[tbe] + 0.8 * agency[tbe] + 0.5 * np.log(tb_total / 80)) * detect_t
    mal = rng.random(len(tbe)) < p_mal
    mt_ent = tbe[mal]
    mt_occ = g.first[tq_end_m[mal]] + g.length[tq_end_m[mal]] + rng.integers(0, 180, int(mal.sum()))
    mt_grave = tb_total[mal] >= 300

    # monthly filing volume (applications) for the agency and abnormal-filing hazards
    vol = _bincount2(all_pe, g.month_of(all_pocc), all_pq.astype(np.float64), (m, M))
    vol_p12 = _trailing(vol, 12)
    vol = vol + _bincount2(te, tm, tq.astype(np.float64), (m, M))
    vol12 = _trailing(vol, 12)
    del vol

    # ---------------- signals ----------------
    trading = alive & active[:, None]
    ind_ip = _lookup(_IP_BY_IND, ind, 0.5)
    cnt = _poisson(
        rng, H_COMPLAINT * E * ((1 + 1.5 * online) * ind_ip)[:, None] * trading * np.where(dormant, 0.2, 1.0)
    )
    ce, cm = _expand(cnt)
    c_occ = g.random_day(rng, cm)
    ev.add("complaint_received", ce, c_occ, 1 + rng.geometric(0.75, len(ce)) - 1)
    td_rate = H_TAKEDOWN * E**1.1 * (online & active)[:, None] * alive * ~dormant
    cnt = _poisson(rng, td_rate)
    del td_rate
    de, dm = _expand(cnt)
    ev.add("platform_takedown", de, g.random_day(rng, dm), rng.geometric(0.35, len(de)))
    td6 = _trailing(cnt.astype(np.float64), 6)

    # late annual reports: due 30 June for the previous year
    years = g.years
    jul = np.array([_day(date(int(y), 7, 1)) for y in years])
    jul_m = g.month_of(jul)
    jun_reg = reg_day[:, None] < np.array([_day(date(int(y), 1, 1)) for y in years])[None, :]
    z_jul = Z[:, jul_m]
    p_late = _sigmoid(
        -4.1 + 0.9 * z_jul + 2.8 * dormant[:, jul_m] + 0.6 * indiv[:, None] + 0.5 * (age_m[:, jul_m] < 24)
    )
    late = (rng.random(p_late.shape) < p_late) & jun_reg & active[:, None] & (jul[None, :] >= g.first[0])
    le, ly = np.nonzero(late)
    l_occ = jul[ly]
    l_rec = ev.add("annual_report_late", le, l_occ)

    # ---------------- confirmed violations ----------------
    ent_ = ~agency
    base_ip = (H_INFRINGEMENT * ind_ip * (1 + 1.0 * online) * ent_)[:, None] * E
    referral = 0.02 * (online & ent_)[:, None] * np.maximum(td6 - 2, 0) * np.sqrt(E)  # platform referrals
    cnt = _poisson(rng, (base_ip + referral) * adverse_mult)
    del base_ip, referral, td6
    ip_e, ip_m = _expand(cnt)
    ip_occ = g.random_day(rng, ip_m)
    cnt = _poisson(rng, (H_COUNTERFEIT * _lookup(_CP_BY_IND, ind, 0.5) * ent_)[:, None] * E * adverse_mult)
    cp_e, cp_m = _expand(cnt)
    cp_occ = g.random_day(rng, cp_m)
    cnt = _poisson(rng, (H_JUDGMENT * (1 + 1.5 * patent_filer) * ent_)[:, None] * E**0.8 * adverse_mult)
    ij_e, ij_m = _expand(cnt)
    ij_occ = g.random_day(rng, ij_m)
    am_rows = np.flatnonzero(agency)
    cnt = _poisson(
        rng, H_AGENCY * E[am_rows] * (1 + (vol12[am_rows] / 300) ** 1.5) * adverse_mult[am_rows]
    )
    am_e, am_m = _expand(cnt)
    am_e = am_rows[am_e]
    am_occ = g.random_day(rng, am_m)
    del vol12
    ap_era = np.where(g.year < 2021, 0.45, 1.0)[None, :]
    cnt = _poisson(
        rng,
        (H_ABNORMAL_BASE * (1 + 2 * agency) * 2 * (1 - grant_ratio) * patent_filer)[:, None]
        * E * (1 + vol_p12 / 100) * ap_era * adverse_mult,
    )
    del vol_p12
    e2, m2 = _expand(cnt)
    ap_ent = np.concatenate([ap_ent, e2])
    ap_occ = np.concatenate([ap_occ, g.random_day(rng, m2)])
    ap_grave = np.concatenate([ap_grave, np.zeros(len(e2), bool)])
    cnt = _poisson(rng, (H_FALSE_MATERIALS * (1 + patent_filer + tm_filer))[:, None] * E * adverse_mult)
    fm_e, fm_m = _expand(cnt)
    fm_occ = g.random_day(rng, fm_m)
    del cnt

    # founded complaints become penalties, judgments or agency sanctions
    zc = Z[ce, cm]
    founded = rng.random(len(ce)) < _sigmoid(-2.5 + 1.0 * zc)
    fe = ce[founded]
    f_occ = c_occ[founded] + rng.integers(20, 150, len(fe))
    kind_draw = rng.random(len(fe))
    is_ag = agency[fe]
    ip_e = np.concatenate([ip_e, fe[~is_ag & (kind_draw < 0.65)]])
    ip_occ = np.concatenate([ip_occ, f_occ[~is_ag & (kind_draw < 0.65)]])
    cp_sel = ~is_ag & (kind_draw >= 0.65) & (kind_draw < 0.85)
    cp_e, cp_occ = np.concatenate([cp_e, fe[cp_sel]]), np.concatenate([cp_occ, f_occ[cp_sel]])
    ij_sel = ~is_ag & (kind_draw >= 0.85)
    ij_e = np.concatenate([ij_e, fe[ij_sel]])
    ij_occ = np.concatenate([ij_occ, f_occ[ij_sel] + rng.integers(60, 300, int(ij_sel.sum()))])
    am_e, am_occ = np.concatenate([am_e, fe[is_ag]]), np.concatenate([am_occ, f_occ[is_ag]])

    def zat(e, d):
        return Z[e, g.month_of(d)]

    # repeat offences: a sanctioned entity that has not changed its ways is often caught again soon
    def repeat(e_, d_):
        for _ in range(2):  # two generations of follow-ups
            again = rng.random(len(e_)) < _sigmoid(P_REPEAT_LOGIT + 0.8 * zat(e_, d_))
            e_new, d_new = e_[again], d_[again] + rng.integers(30, 240, int(again.sum()))
            e_, d_ = np.concatenate([e_, e_new]), np.concatenate([d_, d_new])
        return e_, d_

    ip_e, ip_occ = repeat(ip_e, ip_occ)
    cp_e, cp_occ = repeat(cp_e, cp_occ)

    ip_amt = _round_money(np.exp(np.log(20_000) + 0.3 * zat(ip_e, ip_occ) + rng.normal(0, 0.9, len(ip_e))), 5_000, 500_000)
    cp_amt = _round_money(np.exp(np.log(15_000) + 0.3 * zat(cp_e, cp_occ) + rng.normal(0, 0.9, len(cp_e))), 5_000, 500_000)
    am_amt = _round_money(np.exp(np.log(30_000) + rng.normal(0, 0.6, len(am_e))), 10_000, 100_000)
    ij_amt = _round_money(np.exp(np.log(80_000) + rng.normal(0, 1.2, len(ij_e))), 10_000, 5_000_000)
    ip_rec = ev.add("infringement_penalty", ip_e, ip_occ, amt=ip_amt)
    cp_rec = ev.add("counterfeit_patent_penalty", cp_e, cp_occ, amt=cp_amt)
    ij_rec = ev.add("infringement_judgment", ij_e, ij_occ, amt=ij_amt)
    am_rec = ev.add("agency_misconduct", am_e, am_occ, amt=am_amt)
    ap_rec = ev.add("abnormal_patent_filing", ap_ent, ap_occ)
    mt_rec = ev.add("malicious_trademark_filing", mt_ent, mt_occ)
    fm_rec = ev.add("false_materials", fm_e, fm_occ)

    # refusals to comply follow penalties
    pen_e = np.concatenate([ip_e, cp_e, am_e])
    pen_occ = np.concatenate([ip_occ, cp_occ, am_occ])
    refuse = rng.random(len(pen_e)) < _sigmoid(-5.8 + 0.9 * zat(pen_e, pen_occ))
    rc_e = pen_e[refuse]
    rc_occ = pen_occ[refuse] + rng.integers(60, 300, len(rc_e))
    rc_rec = ev.add("refusal_to_comply", rc_e, rc_occ)

    # credit commitments (for subsidies, fee reductions, licences) and their breaches
    com_rate = (H_COMMITMENT * (1 + 2 * (patent_filer | tm_filer)) * active)[:, None] * alive
    com_rate = com_rate * np.where(g.year >= 2019, 2.0, 1.0)[None, :]
    cnt = _poisson(rng, com_rate)
    del com_rate
    ke, km = _expand(cnt)
    k_occ = g.random_day(rng, km)
    ev.add("commitment_signed", ke, k_occ)
    breach = rng.random(len(ke)) < _sigmoid(-3.0 + 1.1 * Z[ke, km])
    cb_e = ke[breach]
    cb_occ = k_occ[breach] + rng.integers(30, 540, len(cb_e))
    cb_rec = ev.add("commitment_breach", cb_e, cb_occ)

    # ---------------- credit repair (decided here, so that lists can follow it) ----------------
    # Penalties and list-causing findings may be repaired 6+ months after publication; entities that
    # have reformed (low z) apply more often.
    repair: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for code, e_, occ_, rec_ in (
        ("infringement_penalty", ip_e, ip_occ, ip_rec),
        ("counterfeit_patent_penalty", cp_e, cp_occ, cp_rec),
        ("agency_misconduct", am_e, am_occ, am_rec),
        ("abnormal_patent_filing", ap_ent, ap_occ, ap_rec),
        ("malicious_trademark_filing", mt_ent, mt_occ, mt_rec),
        ("false_materials", fm_e, fm_occ, fm_rec),
        ("commitment_breach", cb_e, cb_occ, cb_rec),
        ("refusal_to_comply", rc_e, rc_occ, rc_rec),
    ):
        z_rec = zat(e_, rec_ + 200)
        yes = rng.random(len(e_)) < _sigmoid(P_REPAIR_LOGIT - 0.8 * z_rec)
        rep = np.where(yes, rec_ + 185 + rng.exponential(150, len(e_)).astype(np.int64), _NULL_DAY)
        repair[code] = (e_, rep)
        ev.repair(code, rep)
        # a repair application comes with a signed credit commitment
        ev.add("commitment_signed", e_[yes], rep[yes] - rng.integers(7, 60, int(yes.sum())))

    # ---------------- lists ----------------
    # untrustworthy (CNIPA): about one year, or until repaired
    for code, e_, rec_ in (
        ("abnormal_patent_filing", ap_ent, ap_rec),
        ("malicious_trademark_filing", mt_ent, mt_rec),
        ("false_materials", fm_e, fm_rec),
        ("commitment_breach", cb_e, cb_rec),
        ("refusal_to_comply", rc_e, rc_rec),
        ("agency_misconduct", am_e, am_rec),
    ):
        entered = rec_ + rng.integers(0, 21, len(e_))
        rep = repair[code][1]
        removed = np.where(rep != _NULL_DAY, rep, entered + rng.integers(365, 411, len(e_)))
        lists.add("untrustworthy", e_, entered, np.maximum(removed, entered))
    # serious violations (SAMR Order 44): grave cases only
    grave_e, grave_rec = [], []
    for e_, rec_, p in (
        (ip_e, ip_rec, np.where(ip_amt >= 200_000, 0.3, 0.0)),
        (cp_e, cp_rec, np.where(cp_amt >= 150_000, 0.5, 0.0)),
        (rc_e, rc_rec, np.full(len(rc_e), 0.15)),
        (ap_ent, ap_rec, np.where(ap_grave, 0.25, 0.0)),
        (mt_ent, mt_rec, np.where(mt_grave, 0.15, 0.0)),
        (am_e, am_rec, np.full(len(am_e), 0.05)),
        (fm_e, fm_rec, np.full(len(fm_e), 0.05)),
    ):
        s = rng.random(len(e_)) < p
        grave_e.append(e_[s])
        grave_rec.append(rec_[s])
    # abnormal operation after late annual reports; most file and are moved out
    listed = rng.random(len(le)) < 0.8
    ao_e = le[listed]
    ao_in = l_rec[listed] + rng.integers(0, 31, len(ao_e))
    fixed = rng.random(len(ao_e)) < 0.85
    ao_out = np.where(fixed, ao_in + 20 + rng.exponential(120, len(ao_e)).astype(np.int64), _NULL_DAY)
    # ... and a few for an unreachable registered address, with no event behind them
    unreach = rng.random(m) < 0.01 * (g.end - g.start) / 365.25 / 10
    ue = np.flatnonzero(unreach)
    u_in = np.maximum(reg_day[ue], g.first[0]) + (
        rng.random(len(ue)) * (g.end + 1 - np.maximum(reg_day[ue], g.first[0]))
    ).astype(np.int64)
    u_out = np.where(rng.random(len(ue)) < 0.6, u_in + 30 + rng.exponential(200, len(ue)).astype(np.int64), _NULL_DAY)
    ao_e, ao_in, ao_out = np.concatenate([ao_e, ue]), np.concatenate([ao_in, u_in]), np.concatenate([ao_out, u_out])
    lists.add("abnormal_operation", ao_e, ao_in, ao_out)
    # three years in the abnormal-operation directory without putting it right: serious violation
    stuck = (ao_out == _NULL_DAY) | (ao_out > ao_in + 1096)
    stuck &= rng.random(len(ao_e)) < 0.1
    grave_e.append(ao_e[stuck])
    grave_rec.append(ao_in[stuck] + 1096 - 30)
    sv_e = np.concatenate(grave_e)
    sv_in = np.concatenate(grave_rec) + 30 + rng.integers(0, 31, len(sv_e))
    early = rng.random(len(sv_e)) < 0.35
    sv_out = np.where(early, sv_in + 365 + rng.integers(0, 400, len(sv_e)), _NULL_DAY)
    lists.add("serious_violation", sv_e, sv_in, sv_out)

    # negative-list status by month: key supervision means more inspections
    le_code, l_ent, l_in, l_out = lists.arrays()
    out_eff = np.where(l_out == _NULL_DAY, np.where(le_code == _LIST["serious_violation"], l_in + 1096, 10**9), l_out)
    diff = np.zeros((m, M + 1), dtype=np.int32)
    np.add.at(diff, (l_ent, g.month_of(l_in)), 1)
    in_grid = out_eff <= g.first[-1] + g.length[-1]
    np.add.at(diff, (l_ent[in_grid], g.month_of(out_eff[in_grid])), -1)
    on_list = np.cumsum(diff[:, :M], axis=1) > 0
    del diff

    # ---------------- random inspections ("双随机") ----------------
    tiered = g.first >= _day(date(2022, 7, 1))  # risk-tiered sampling rolled out
    noisy = a + rng.normal(0, 0.8, m)
    tier_mult = np.clip(np.exp(0.7 * noisy - 0.25), 0.3, 4.0)
    rate = (H_INSPECTION * np.where(quiet, 0.5, 1.0))[:, None] * alive * np.where(on_list, 3.0, 1.0)
    rate = rate * np.where(tiered[None, :], tier_mult[:, None], 1.0)
    cnt = _poisson(rng, rate)
    del rate
    ie, im = _expand(cnt)
    i_occ = g.random_day(rng, im)
    # complaints also trigger targeted inspections
    trig = rng.random(len(ce)) < 0.12
    ie = np.concatenate([ie, ce[trig]])
    i_occ = np.concatenate([i_occ, c_occ[trig] + rng.integers(10, 90, int(trig.sum()))])
    failed = rng.random(len(ie)) < _sigmoid(-2.2 + 1.0 * zat(ie, i_occ))
    ev.add("inspection_failed", ie[failed], i_occ[failed])
    ev.add("inspection_passed", ie[~failed], i_occ[~failed])
    del on_list

    # ---------------- honours, certifications, red list ----------------
    typ, e_all, occ_all, rec_all, *_ = ev.arrays()
    adv = np.isin(typ, _ADVERSE_IDX)
    adv_key = np.sort(e_all[adv] * 100_000 + rec_all[adv])
    strong = patent_filer & (lam_p * batch_p >= 0.8) & (a < 0.3) & ~agency
    se = np.flatnonzero(strong)
    red_e, red_in = [], []
    for code, month, p, subsidy, p_sub in (
        ("honor_advantage", 11, 0.2, 100_000, 0.5),
        ("honor_demonstration", 12, 0.06, 300_000, 0.7),
    ):
        ann = np.array([_day(date(int(y), month, 1)) for y in years])[None, :] + rng.integers(0, 28, (len(se), len(years)))
        cand = (rng.random(ann.shape) < p) & (ann >= reg_day[se, None] + 365 * 3)
        he, hy = np.nonzero(cand)
        he_ent = se[he]
        h_day = ann[he, hy]
        recent = np.searchsorted(adv_key, he_ent * 100_000 + h_day, side="right") - np.searchsorted(
            adv_key, he_ent * 100_000 + h_day - 1096, side="right"
        )
        ok = recent == 0
        he_ent, h_day = he_ent[ok], h_day[ok]
        amount = np.where(rng.random(len(he_ent)) < p_sub, _round_money(subsidy * np.exp(rng.normal(0, 0.5, len(he_ent))), 10_000, 2_000_000), np.nan)
        h_rec = ev.add(code, he_ent, h_day, amt=amount)
        red_e.append(he_ent)
        red_in.append(h_rec)
    ipms = (patent_filer & (capital >= 100) & active)[:, None] & (rng.random((m, len(years))) < 0.04 * np.exp(-0.3 * a)[:, None])
    ie2, iy = np.nonzero(ipms)
    ev.add("ipms_certified", ie2, np.array([_day(date(int(y), 1, 1)) for y in years])[iy] + rng.integers(0, 365, len(ie2)))
    # red list: entered on the honour, out at the first adverse record, a renewal or after 3 years
    r_e = np.concatenate(red_e)
    r_in = np.concatenate(red_in)
    order = np.lexsort((r_in, r_e))
    r_e, r_in = r_e[order], r_in[order]
    nxt = np.searchsorted(adv_key, r_e * 100_000 + r_in, side="right")
    padded = np.append(adv_key, -1)  # sentinel: "no later adverse record"
    hit = padded[nxt] // 100_000 == r_e
    nxt_adv_day = np.where(hit, padded[nxt] % 100_000, 10**9)
    same_next = np.append(r_e[1:] == r_e[:-1], False)
    nxt_red = np.where(same_next, np.append(r_in[1:], 0), 10**9)
    r_out = np.minimum(np.minimum(nxt_adv_day, nxt_red), r_in + 1096)
    keep = r_out > r_in  # a same-day renewal replaces the entry
    lists.add("red", r_e[keep], r_in[keep], r_out[keep])

    # ---------------- assemble the block ----------------
    typ, e_all, occ_all, rec_all, qty_all, amt_all, rep_all = ev.arrays()
    keep = (occ_all >= np.maximum(reg_day[e_all], g.start)) & (rec_all <= g.end)
    rep_all = np.where(rep_all > g.end, _NULL_DAY, rep_all)
    typ, e_all, occ_all, rec_all, qty_all, amt_all, rep_all = (
        x[keep] for x in (typ, e_all, occ_all, rec_all, qty_all, amt_all, rep_all)
    )
    order = np.lexsort((typ, rec_all, occ_all, e_all))
    typ, e_all, occ_all, rec_all, qty_all, amt_all, rep_all = (
        x[order] for x in (typ, e_all, occ_all, rec_all, qty_all, amt_all, rep_all)
    )

    lc, l_ent, l_in, l_out = lists.arrays()
    lapsed = (lc == _LIST["serious_violation"]) & (l_out == _NULL_DAY) & (l_in + 1096 < g.start)
    before_window = (l_out != _NULL_DAY) & (l_out < g.start)
    lkeep = (l_in <= g.end) & (l_in >= reg_day[l_ent]) & ~lapsed & ~before_window
    l_out = np.where(l_out > g.end, _NULL_DAY, l_out)
    lc, l_ent, l_in, l_out = (x[lkeep] for x in (lc, l_ent, l_in, l_out))
    order = np.lexsort((lc, l_in, l_ent))
    lc, l_ent, l_in, l_out = (x[order] for x in (lc, l_ent, l_in, l_out))

    # ids and frames
    prefix = np.where(law, "31", np.where(indiv, "92", "91"))
    new_style = reg_day >= _day(date(2015, 10, 1))
    ids = _codes(np.arange(offset, offset + m), prefix, region, new_style, key)
    names = _names(rng, city, ind, indiv, agency, law, capital)
    ids_pa = pa.array(ids, type=pa.string())
    entities = pd.DataFrame(
        {
            "entity_id": _str_series(ids_pa),
            "name": _str_series(names.tolist()),
            "kind": _str_series(np.where(agency, "agency", "enterprise").tolist()),
            "industry": _str_series(np.array(INDUSTRIES)[ind].tolist()),
            "region": _str_series(region.tolist()),
            "registered_on": _dates(reg_day),
            "registered_capital": np.where(cap_null, np.nan, capital),
            "online_seller": online,
        }
    )
    codes_pa = pa.array(np.array(EVENT_CODES, dtype=object), type=pa.string())
    events = pd.DataFrame(
        {
            "entity_id": _str_series(ids_pa.take(pa.array(e_all))),
            "event_type": _str_series(codes_pa.take(pa.array(typ.astype(np.int64)))),
            "occurred_on": _dates(occ_all),
            "recorded_on": _dates(rec_all),
            "quantity": qty_all.astype(np.int64),
            "amount": amt_all.astype(np.float64),
            "repaired_on": _dates(rep_all),
        }
    )
    list_pa = pa.array(list(_LIST_CODES), type=pa.string())
    lists_df = pd.DataFrame(
        {
            "entity_id": _str_series(ids_pa.take(pa.array(l_ent))),
            "list": _str_series(list_pa.take(pa.array(lc.astype(np.int64)))),
            "entered_on": _dates(l_in),
            "removed_on": _dates(l_out),
            "basis": _basis(rng, lc, l_in, city[l_ent]),
        }
    )
    return _Piece(m, entities, events, lists_df, e_all, l_ent, 0)


def _basis(rng: np.random.Generator, lc: np.ndarray, entered: np.ndarray, city: np.ndarray) -> pd.Series:
    """Decision numbers like 国知局公告第512号 or 丹东市监信〔2023〕12号; some exports leave it empty."""
    n = len(lc)
    year = (entered.view("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970).astype(str)
    num = rng.integers(1, 600, n).astype(str)
    y = np.strings.add(np.strings.add("〔", year), "〕")
    red = np.strings.add(np.strings.add(np.strings.add("国知办函运字", y), num), "号")
    untrust = np.strings.add(np.strings.add("国知局公告第", num), "号")
    serious = np.strings.add(np.strings.add(np.strings.add(np.strings.add(city, "市监信"), y), num), "号")
    abnormal = np.strings.add(np.strings.add(np.strings.add(np.strings.add(city, "市监异字"), y), "第"), num)
    abnormal = np.strings.add(abnormal, "号")
    out = np.select(
        [lc == _LIST["red"], lc == _LIST["untrustworthy"], lc == _LIST["serious_violation"]],
        [red, untrust, serious],
        abnormal,
    ).astype(object)
    out[rng.random(n) < 0.08] = None
    return _str_series(pa.array(out.tolist(), type=pa.string()))
