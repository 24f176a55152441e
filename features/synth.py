"""A realistic synthetic world of IP-credit histories (the data behind ``ipcredit demo-data``).

Every entity carries a hidden, drifting risk propensity ``z``: a fixed level, a mean-reverting monthly
random walk and, for some entities, one regime change (firms reform or deteriorate). ``z`` drives
complaints, takedowns, late annual reports, inspection failures and confirmed violations together, so the
past predicts the future, but only through noisy, recorded traces of ``z``. Some mechanisms are products
of observable traits rather than sums (a filing burst leads to an abnormal-filing finding mostly when the
grant ratio is low; online sellers of goods are where infringement concentrates; platforms refer repeat
takedowns past a threshold; filing volume means low risk for an enterprise and high risk for an agency;
young, thinly capitalised online sellers are fly-by-night), which a tree ensemble can find and an additive
scorecard cannot fully.

The generating process, its parameters and what a model can and cannot learn from it are described in
``docs/synthetic-world.md``. Everything is vectorised with numpy over entity x month matrices or over
arrays of events; Python loops run over months, years, event types or blocks of entities, never over
events.

Entities are simulated in fixed blocks of ``_BLOCK`` entities, each under its own seed, so the world does
not depend on ``chunk_size``; entity codes and ``E``-numbered event ids are global and unique.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import (
    ADVERSE_CODES,
    ENTITIES,
    EVENT_CODES,
    EVENTS,
    INDUSTRIES,
    LIST_NAMES,
    LISTS,
    RELATION_TYPES,
    RELATIONS,
    Table,
)
from features.uscc import ALPHABET, WEIGHTS

__all__ = ["World", "generate", "generate_chunks"]


@dataclass(frozen=True)
class World:
    """The contract tables of a synthetic dataset, with the contract's columns in order (``relations``
    empty unless the world links its entities)."""

    entities: pd.DataFrame
    events: pd.DataFrame
    lists: pd.DataFrame
    relations: pd.DataFrame = field(default_factory=lambda: _typed_empty(RELATIONS))


# ---------------------------------------------------------------------------------------------------
# Parameters (documented in docs/synthetic-world.md). Rates are per entity-month at z = 0 unless stated.
# ---------------------------------------------------------------------------------------------------
_BLOCK = 10_000  # entities simulated together under one seed
_BURN_IN_MONTHS = 24  # simulated before ``start`` (and then dropped) so the window opens on a world in motion
_EVENT_ID_DIGITS = 10

P_AGENCY = 0.08
P_INDIVIDUAL = 0.12  # of enterprises: individual businesses (个体工商户, code type 92)
P_LAW_FIRM = 0.15  # of agencies: law firms (code 31); the rest are agency companies or partnerships (91)
P_QUIET = {"company": 0.14, "individual": 0.18, "agency": 0.08}  # entities that never do anything recorded
P_DORMANT = 0.12  # entities that stop trading and filing at some month

# (code, name prefix, weight, regional shift of z)
REGIONS: tuple[tuple[str, str, float, float], ...] = (
    ("440300", "深圳", 9.0, 0.10),
    ("320500", "苏州", 6.5, 0.00),
    ("330100", "杭州", 6.0, 0.05),
    ("440100", "广州", 6.0, 0.10),
    ("310115", "上海", 5.5, -0.05),
    ("110105", "北京", 4.5, -0.05),
    ("110108", "北京", 4.0, -0.10),
    ("410100", "郑州", 4.5, 0.05),
    ("510100", "成都", 4.0, 0.00),
    ("420100", "武汉", 3.5, 0.00),
    ("441900", "东莞", 3.5, 0.15),
    ("370200", "青岛", 3.0, 0.00),
    ("440600", "佛山", 3.0, 0.10),
    ("320100", "南京", 3.0, -0.05),
    ("330200", "宁波", 2.5, 0.05),
    ("350500", "泉州", 2.5, 0.20),
    ("340100", "合肥", 2.5, 0.00),
    ("430100", "长沙", 2.5, 0.00),
    ("610100", "西安", 2.5, 0.00),
    ("330782", "义乌", 2.0, 0.30),
    ("350200", "厦门", 2.0, 0.00),
    ("120116", "天津", 2.0, 0.00),
    ("500112", "重庆", 2.0, 0.05),
    ("370100", "济南", 2.0, 0.00),
    ("210100", "沈阳", 1.5, 0.05),
    ("210200", "大连", 1.5, 0.00),
    ("130100", "石家庄", 1.5, 0.10),
    ("210600", "丹东", 1.0, 0.05),
    ("410300", "洛阳", 1.0, 0.05),
    ("320900", "盐城", 1.0, 0.05),
    ("360100", "南昌", 1.0, 0.05),
    ("530100", "昆明", 1.0, 0.05),
    ("450100", "南宁", 1.0, 0.10),
    ("220100", "长春", 1.0, 0.05),
    ("230100", "哈尔滨", 1.0, 0.05),
    ("150800", "巴彦淖尔", 0.3, 0.10),
)

# GB/T 4754 sections: weights for companies and for individual businesses.
_IND_COMPANY = dict(
    A=1.8, B=0.4, C=30.0, D=0.6, E=5.0, F=21.0, G=2.8, H=2.5, I=10.0, J=0.6,
    K=2.2, L=8.0, M=9.5, N=0.9, O=1.2, P=1.0, Q=0.8, R=1.6, S=0.09, T=0.01,
)  # fmt: skip
_IND_INDIVIDUAL = dict(A=3.0, C=6.0, F=58.0, H=14.0, I=4.0, O=10.0, R=5.0)
_ONLINE_BY_IND = dict(F=0.52, I=0.38, C=0.22, H=0.22, R=0.20, L=0.12, M=0.10, O=0.10)
_ONLINE_OTHER = 0.06
_PATENT_FILER_BY_IND = dict(C=0.45, M=0.50, I=0.35, D=0.30, B=0.20, E=0.20, Q=0.15)
_TM_FILER_BY_IND = dict(F=0.50, C=0.35, I=0.40, H=0.30, R=0.30, M=0.25, L=0.25)
_IP_BY_IND = dict(C=1.2, F=1.2, I=0.8, M=0.6, L=0.9, R=1.2, H=0.7)  # infringement (and complaint) rates
_CP_BY_IND = dict(C=1.5, F=1.3, M=1.0)  # counterfeit-patent penalty rates

# Relationships (关联关系), links inside a block of entities. Each carries a true effect that moves along
# the links before it shows in an entity's own record:
# - an agency may turn into a "mill" at some month: from then on the clients it serves burst and are
#   found filing abnormally, and some months later the agency itself is sanctioned more, so its clients'
#   findings announce the agency's own and its sanctions its clients' (its static level rises too);
# - groups of enterprises run by one person (a shared legal representative, often also shareholdings)
#   share a part of their risk level and may turn worse together, the first member first and the others
#   (often young shells registered later) a few months after, so one member's record tells on the others;
# - shared addresses are mostly coincidence (business centres): links without an effect.
P_CLIENT = 0.45  # of enterprises: served by an agency during the window
P_MILL = 0.2  # of agencies
MILL_WEIGHT = 3.0  # a mill agency takes on this many times the clients of another
MILL_AGENCY_SHIFT = 0.9  # added to a mill agency's z from MILL_LAG months after it turns
MILL_AGENCY_LEVEL = 0.3  # added to a mill agency's level
MILL_LAG = (3, 13)  # months from the turn (and the clients' first findings) to the agency's own rise
MILL_CLIENT_SHIFT = 1.2  # added to a client's z while a mill agency serves it
MILL_BURST = 2.0  # times the client's z shift, added to the logit of its filing bursts
P_CLIENT_LEAVES = 0.3  # a client link that ends inside the window
P_GROUPED = 0.2  # of enterprises: in a group under one legal representative
GROUP_SD = 1.2  # sd of the level a group shares (added to each member's)
P_GROUP_TURN = 0.6  # a group whose controller turns worse: its first member, then the others
GROUP_TURN = (1.3, 0.4)  # mean and sd of that shift of z
GROUP_LAG = (3, 13)  # months from the first member's turn to the others'
P_SHELL = 0.6  # a later member registered after the first one (a new company of the same people)
P_GROUP_SHARES = 0.5  # a group member whose shares the group's first member also holds
P_SHARED_ADDRESS = 0.04  # of enterprises: registered at an address shared with one other
P_LATE_LINK = 0.1  # a link recorded long after it began (found in a later registry check)

# Hidden propensity z = level + drift (AR(1) by month) + one regime jump for some.
Z_DRIFT_PHI = 0.96
Z_DRIFT_SIGMA = 0.17
P_REGIME_CHANGE = 0.25
REGIME_JUMP_SD = 0.9
Z_CAP = 3.5  # exp(z) in rates is capped at exp(3.5) = 33 times the base rate

# Filing.
LAMBDA_PATENT = {"enterprise": 0.21, "agency": 1.2}  # median filing batches per month of a filer
LAMBDA_TRADEMARK = {"enterprise": 0.14, "agency": 1.0}
MAX_BATCHES = 12.0  # filing batches per month of the heaviest filers
BURST_LOGIT = -6.6  # logit of a patent filing burst per entity-quarter (before the 2021 campaign)
TM_BURST_LOGIT = -7.0

# Hazards per entity-month at z = 0.
H_INFRINGEMENT = 0.0005
H_COUNTERFEIT = 0.00025
H_JUDGMENT = 0.0003
H_AGENCY = 0.003
H_ABNORMAL_BASE = 0.0002
H_FALSE_MATERIALS = 0.00012
H_COMPLAINT = 0.003
H_TAKEDOWN = 0.010
H_COMMITMENT = 0.002
H_INSPECTION = 0.0025
H_REFERRAL = 0.06  # platform referral hazard per takedown above two in the last 6 months
GOODS_ONLINE_MULT = 3.0  # infringement multiplier of online sellers of goods (industries C and F); others 0.8
YOUNG_THIN_MULT = 4.0  # adverse multiplier of online sellers under 2 years old with capital < 30 万元
QUIET_ADVERSE_MULT = 0.1  # a quiet entity can still be sanctioned out of the blue

CASE_EXTRA_DECISIONS = 0.25  # mean extra decisions per penalty case at z = 0 (times exp(0.3 z))
P_REPEAT_LOGIT = -1.0  # logit of a repeat penalty per penalty (two generations of follow-ups)
P_REFUSAL_LOGIT = -7.2  # logit of refusing to comply with a penalty
P_BREACH_LOGIT = -3.0  # logit of breaking a signed credit commitment
P_REPAIR_LOGIT = 0.5  # logit of obtaining credit repair, before -0.8 z
P_INSPECTION_FAIL_LOGIT = -2.2

REPAIR_MIN_DAYS = 185  # repair no earlier than 6 months after publication
LAPSE_DAYS = 1096  # a serious-violation entry lapses after 3 years


# ---------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------
def check_world(n_entities: int, start: date, end: date) -> None:
    """``ValueError`` unless a world of ``n_entities`` over ``start``..``end`` can be generated (every profile)."""
    if n_entities < 0:
        raise ValueError(f"n_entities must be >= 0; got {n_entities}")
    if end <= start:
        raise ValueError(f"end must be after start; got start={start}, end={end}")


def generate_chunks(
    n_entities: int,
    seed: int = 0,
    *,
    start: date = date(2016, 1, 1),
    end: date = date(2025, 12, 31),
    chunk_size: int = 100_000,
) -> Iterator[World]:
    """Yield the synthetic world in chunks of at most ``chunk_size`` entities with all their rows.

    The world is determined by ``(n_entities, seed, start, end)`` and does not depend on ``chunk_size``.
    Entity and event ids are unique across chunks; every event and list row of an entity is in the chunk
    of the entity. No event occurs before ``start`` and nothing is recorded, entered, removed or repaired
    after ``end``. Memory is bounded by one chunk (plus one simulation block of ``_BLOCK`` entities).
    """
    check_world(n_entities, start, end)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    grid = _Grid(start, end)
    codes = _CodeKey(seed)
    pending: list[_Piece] = []
    pending_n = 0
    next_event = 1
    for block_index, block_start in enumerate(range(0, n_entities, _BLOCK)):
        m = min(_BLOCK, n_entities - block_start)
        rng = np.random.default_rng(np.random.SeedSequence([seed, block_index]))
        piece: _Piece | None = _simulate_block(m, block_start, rng, grid, codes)
        while piece is not None:
            head, piece = piece.split(chunk_size - pending_n)
            pending.append(head)
            pending_n += head.n
            if pending_n == chunk_size:
                world, next_event = _assemble(pending, next_event)
                yield world
                pending, pending_n = [], 0
    if pending or n_entities == 0:
        world, next_event = _assemble(pending, next_event)
        yield world


def generate(
    n_entities: int,
    seed: int = 0,
    *,
    start: date = date(2016, 1, 1),
    end: date = date(2025, 12, 31),
    chunk_size: int = 100_000,
) -> World:
    """The whole synthetic world in memory: ``generate_chunks`` concatenated."""
    chunks = list(generate_chunks(n_entities, seed, start=start, end=end, chunk_size=chunk_size))
    if len(chunks) == 1:
        return chunks[0]
    return World(*(pd.concat([getattr(c, t) for c in chunks], ignore_index=True) for t in _TABLES))


# ---------------------------------------------------------------------------------------------------
# Time grid and small numeric helpers. Days are int64 days since 1970-01-01.
# ---------------------------------------------------------------------------------------------------
_TABLES = ("entities", "events", "lists", "relations")
_EPOCH = np.datetime64("1970-01-01", "D")
_NULL = np.iinfo(np.int64).min  # a null day; becomes NaT
_NEVER = 10**9  # a day after any end
_KEY = 100_000  # entity * _KEY + day: a sortable (entity, day) key
_CODE = {c: i for i, c in enumerate(EVENT_CODES)}
_ADVERSE = np.array([_CODE[c] for c in ADVERSE_CODES])
_LIST = {c: i for i, c in enumerate(LIST_NAMES)}
_C, _F = INDUSTRIES.index("C"), INDUSTRIES.index("F")


def _day(d: date) -> int:
    return int((np.datetime64(d, "D") - _EPOCH).astype(np.int64))


def _days_of(year: np.ndarray, month: int, day: int = 1) -> np.ndarray:
    return np.array([_day(date(int(y), month, day)) for y in year], dtype=np.int64)


class _Grid:
    """The monthly grid from ``start`` minus the burn-in to ``end``."""

    def __init__(self, start: date, end: date):
        self.start = _day(start)
        self.end = _day(end)
        first = np.datetime64(start, "M") - _BURN_IN_MONTHS
        months = np.arange(first, np.datetime64(end, "M") + 1)
        bounds = (np.append(months, months[-1] + 1).astype("datetime64[D]") - _EPOCH).astype(np.int64)
        self.first = bounds[:-1]  # first day of each month
        self.length = np.diff(bounds)
        self.n = len(months)
        self.year = months.astype("datetime64[Y]").astype(np.int64) + 1970
        self.years = np.unique(self.year)

    def month_of(self, day: np.ndarray) -> np.ndarray:
        """Grid month of each day, clipped to the grid."""
        return np.clip(np.searchsorted(self.first, day, side="right") - 1, 0, self.n - 1)

    def random_day(self, rng: np.random.Generator, month: np.ndarray) -> np.ndarray:
        """A uniformly random day in each grid month."""
        return self.first[month] + (rng.random(len(month)) * self.length[month]).astype(np.int64)

    def month_end(self, month: np.ndarray) -> np.ndarray:
        month = np.minimum(month, self.n - 1)
        return self.first[month] + self.length[month] - 1


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _poisson(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    """Poisson counts by inverse CDF; several times faster than ``rng.poisson`` when most cells are 0."""
    lam = np.asarray(lam, dtype=np.float64)
    u = rng.random(lam.shape)
    p0 = np.exp(-lam)
    counts = np.zeros(lam.shape, dtype=np.int64)
    idx = np.flatnonzero(u > p0)
    if idx.size == 0:
        return counts
    lam_i, u_i, p_i = lam.flat[idx], u.flat[idx], p0.flat[idx]
    cdf = p_i.copy()
    k = np.zeros(idx.size, dtype=np.int64)
    todo = np.arange(idx.size)
    while todo.size:  # one pass per count value, not per cell
        k[todo] += 1
        p_i[todo] *= lam_i[todo] / k[todo]
        cdf[todo] += p_i[todo]
        todo = todo[(u_i[todo] > cdf[todo]) & (k[todo] < 10_000)]
    counts.flat[idx] = k
    return counts


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every unit in a count matrix."""
    flat = np.flatnonzero(counts)
    rep = np.repeat(flat, counts.flat[flat])
    return rep // counts.shape[1], rep % counts.shape[1]


def _by_industry(table: dict[str, float], industry: np.ndarray, default: float) -> np.ndarray:
    values = np.full(len(INDUSTRIES), default)
    for letter, v in table.items():
        values[INDUSTRIES.index(letter)] = v
    return values[industry]


def _trailing(mat: np.ndarray, months: int) -> np.ndarray:
    """For every cell, the sum of the ``months`` cells before it in its row (the current one excluded)."""
    c = np.zeros((mat.shape[0], mat.shape[1] + 1))
    np.cumsum(mat, axis=1, out=c[:, 1:])
    cols = np.arange(mat.shape[1])
    return c[:, cols] - c[:, np.maximum(cols - months, 0)]


def _matrix(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray | None, shape: tuple[int, int]):
    flat = np.bincount(rows * shape[1] + cols, weights=weights, minlength=shape[0] * shape[1])
    return flat.reshape(shape)


def _money(rng: np.random.Generator, median: float, sd: float, n: int, lo: float, hi: float, shift=0.0):
    """Log-normal amounts in yuan, rounded the way decisions round them."""
    x = np.clip(np.exp(np.log(median) + shift + rng.normal(0, sd, n)), lo, hi)
    step = np.where(x >= 100_000, 10_000, np.where(x >= 10_000, 1_000, 100))
    return np.round(x / step) * step


def _cat(*arrays: np.ndarray) -> np.ndarray:
    return np.concatenate(arrays)


# ---------------------------------------------------------------------------------------------------
# Unified social credit codes. A seeded bijection of the global entity index keeps them unique.
# ---------------------------------------------------------------------------------------------------
_ALPHA = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
_VALUE = np.full(256, -1, dtype=np.int64)
_VALUE[_ALPHA] = np.arange(31)
_USCC_W = np.array(WEIGHTS, dtype=np.int64)
_ORG_W = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)  # GB 11714 organisation-code weights


class _CodeKey:
    """Parameters of the seeded index -> organisation-code bijections."""

    def __init__(self, seed: int):
        r = np.random.default_rng(np.random.SeedSequence([seed, 0x05CC]))
        self.a_new = int(r.integers(10**6, 3 * 10**8)) * 31 + 1  # coprime to 31
        self.b_new = int(r.integers(0, 31**7))
        self.a_old = int(r.integers(10**5, 10**6)) * 10 + 3  # coprime to 10
        self.b_old = int(r.integers(0, 10**8))
        self.mix = r.integers(1, 31, size=8)


def _digits(x: np.ndarray, base: int, width: int) -> np.ndarray:
    out = np.empty((len(x), width), dtype=np.int64)
    for i in range(width - 1, -1, -1):
        out[:, i] = x % base
        x = x // base
    return out


def _codes(index: np.ndarray, prefix: np.ndarray, region: np.ndarray, new_style: np.ndarray, key: _CodeKey):
    """18-character codes: authority and type (2), division (6), organisation code (9), check character."""
    n = len(index)
    x = index.astype(np.int64)
    # Registered since the 2015 reform: "MA" and 7 characters from the alphabet.
    d = _digits((key.a_new % 31**7 * x + key.b_new) % 31**7, 31, 7)
    for i in range(1, 7):  # invertible mixing, so that neighbouring indexes do not look alike
        d[:, i] = (d[:, i] + key.mix[i] * d[:, i - 1]) % 31
    new_org = np.concatenate([np.tile([_VALUE[ord("M")], _VALUE[ord("A")]], (n, 1)), d], axis=1)
    # Older entities keep their 8-digit organisation code and its GB 11714 check digit.
    o = _digits((key.a_old * x + key.b_old) % 10**8, 10, 8)
    for i in range(1, 8):
        o[:, i] = (o[:, i] + key.mix[i] * o[:, i - 1]) % 10
    c = 11 - (o @ _ORG_W) % 11
    check = np.where(c == 10, _VALUE[ord("X")], np.where(c == 11, 0, c))
    old_org = np.concatenate([o, check[:, None]], axis=1)
    org = np.where(new_style[:, None], new_org, old_org)
    pre = _VALUE[np.frombuffer("".join(prefix).encode(), dtype=np.uint8).reshape(n, 2)]
    div = np.frombuffer("".join(region).encode(), dtype=np.uint8).reshape(n, 6).astype(np.int64) - ord("0")
    body = np.concatenate([pre, div, org], axis=1)
    check_char = (31 - (body @ _USCC_W) % 31) % 31
    return _ALPHA[np.concatenate([body, check_char[:, None]], axis=1)].view("S18").ravel().astype(str)


# ---------------------------------------------------------------------------------------------------
# Names (fictitious: a city, a two-character trade name, a line of business, a legal form)
# ---------------------------------------------------------------------------------------------------
_TRADE_1 = np.array(list("华鑫盛恒瑞泰宏博创远达信诚金海天中新光明永德嘉丰隆昌兴源汇联智云锐凯晟辰宇航正"))
_TRADE_2 = np.array(list("华鑫盛恒瑞泰宏博创远达信诚金海天通美佳和成力邦捷越腾峰川瀚锦翔安益科尚禾"))
_LINE: dict[str, tuple[str, ...]] = {
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
_LINE_OTHER = ("实业", "发展", "科技", "控股")
_SHOP = np.array(("百货商行", "服装店", "电子产品经营部", "日用品店", "网店", "食品经营部", "五金店"))
_AGENCY_FORM = np.array(
    ("知识产权代理有限公司", "专利代理事务所（普通合伙）", "商标代理有限公司", "知识产权服务有限公司")
)


def _pick(rng: np.random.Generator, options: np.ndarray, n: int) -> np.ndarray:
    return options[rng.integers(0, len(options), n)]


def _join(*parts: np.ndarray | str) -> np.ndarray:
    out = parts[0]
    for p in parts[1:]:
        out = np.strings.add(out, p)
    return out


def _names(rng: np.random.Generator, b: _Block) -> np.ndarray:
    n = b.m
    trade = _join(_pick(rng, _TRADE_1, n), _pick(rng, _TRADE_2, n))
    city = np.where(rng.random(n) < 0.5, _join(b.city, "市"), b.city)
    line = np.empty(n, dtype=object)
    for i, letter in enumerate(INDUSTRIES):
        sel = b.industry == i
        if sel.any():
            line[sel] = _pick(rng, np.array(_LINE.get(letter, _LINE_OTHER)), int(sel.sum()))
    form = np.where(b.capital > 5000, "股份有限公司", np.where(rng.random(n) < 0.08, "有限责任公司", "有限公司"))
    name = _join(city, trade, line.astype(str), form)
    name = np.where(b.individual, _join(city, trade, _pick(rng, _SHOP, n)), name)
    name = np.where(b.agency & ~b.law_firm, _join(city, trade, _pick(rng, _AGENCY_FORM, n)), name)
    return np.where(b.law_firm, _join(b.city, trade, "律师事务所"), name)


# ---------------------------------------------------------------------------------------------------
# Recording lags and the event and list accumulators of a block
# ---------------------------------------------------------------------------------------------------
# Days from occurrence to record: (low, high) uniform, or ("exp", minimum, mean) capped at 120 days.
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
    """The events of a block, one part per ``add``."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.parts: list[list[np.ndarray]] = []

    def add(self, code: str, ent, occ, qty=None, amount=None) -> tuple[int, np.ndarray]:
        """Add events of type ``code`` occurring on days ``occ``; return the part number and record days."""
        n = len(ent)
        lag = _LAG[code]
        if lag[0] == "exp":
            days = np.minimum(lag[1] + self.rng.exponential(lag[2], n).astype(np.int64), 120)
        else:
            days = self.rng.integers(lag[0], lag[1] + 1, n)
        rec = occ + days
        self.parts.append(
            [
                np.full(n, _CODE[code], np.int8),
                ent,
                occ,
                rec,
                np.ones(n, dtype=np.int64) if qty is None else qty,
                np.full(n, np.nan) if amount is None else amount,
                np.full(n, _NULL),
            ]
        )
        return len(self.parts) - 1, rec

    def repair(self, part: int, repaired: np.ndarray) -> None:
        self.parts[part][6] = repaired

    def arrays(self) -> list[np.ndarray]:
        """typ, ent, occ, rec, qty, amount, repaired over all parts."""
        dtypes = (np.int8, np.int64, np.int64, np.int64, np.int64, np.float64, np.int64)
        if not self.parts:
            return [np.zeros(0, dtype=d) for d in dtypes]
        cols = zip(*self.parts, strict=True)
        return [np.concatenate(c).astype(d, copy=False) for c, d in zip(cols, dtypes, strict=True)]


class _Lists:
    def __init__(self):
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, name: str, ent, entered, removed) -> None:
        self.parts.append((np.full(len(ent), _LIST[name], np.int8), ent, entered, removed))

    def arrays(self) -> list[np.ndarray]:
        """list, ent, entered, removed over all parts."""
        if not self.parts:
            return [np.zeros(0, dtype=d) for d in (np.int8, np.int64, np.int64, np.int64)]
        return [np.concatenate(c) for c in zip(*self.parts, strict=True)]


@dataclass
class _Cases:
    """Confirmed violations of one type before they are recorded."""

    ent: np.ndarray
    occ: np.ndarray
    amount: np.ndarray | None = None
    grave: np.ndarray | None = None  # probability of a serious-violation listing
    rec: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    repaired: np.ndarray | None = None
    part: int = -1

    def extend(self, ent: np.ndarray, occ: np.ndarray) -> None:
        self.ent, self.occ = _cat(self.ent, ent), _cat(self.occ, occ)


# ---------------------------------------------------------------------------------------------------
# One block of entities, simulated stage by stage
# ---------------------------------------------------------------------------------------------------
@dataclass
class _Block:
    """The state of one simulated block: entity traits, the propensity matrices and the accumulators."""

    m: int
    g: _Grid
    rng: np.random.Generator
    ev: _Events
    li: _Lists
    # entity traits (arrays of length m)
    agency: np.ndarray = None
    individual: np.ndarray = None
    law_firm: np.ndarray = None
    industry: np.ndarray = None
    region: np.ndarray = None
    city: np.ndarray = None
    reg_day: np.ndarray = None
    log_cap: np.ndarray = None
    capital: np.ndarray = None
    capital_null: np.ndarray = None
    online: np.ndarray = None
    quiet: np.ndarray = None
    level: np.ndarray = None  # the fixed part of z
    patent_filer: np.ndarray = None
    tm_filer: np.ndarray = None
    grant_ratio: np.ndarray = None
    lam_patent: np.ndarray = None
    batch_patent: np.ndarray = None
    # entity x month matrices
    z: np.ndarray = None
    ez: np.ndarray = None  # exp(z)
    alive: np.ndarray = None
    age: np.ndarray = None  # months since registration
    dormant: np.ndarray = None
    adverse_mult: np.ndarray = None
    on_list: np.ndarray = None  # on a negative list (key supervision)
    # links: block-local (entity, related) indices, relation codes, from/to/recorded days; their z shift
    links: tuple[np.ndarray, ...] = ()
    link_shift: np.ndarray = None

    def z_at(self, ent: np.ndarray, day: np.ndarray) -> np.ndarray:
        return self.z[ent, self.g.month_of(day)]


def _simulate_block(m: int, offset: int, rng: np.random.Generator, g: _Grid, codes: _CodeKey) -> _Piece:
    b = _Block(m=m, g=g, rng=rng, ev=_Events(rng), li=_Lists())
    _draw_entities(b)
    _relations(b)
    _draw_propensity(b)
    findings, volume = _filings(b)
    complaints, takedowns, late = _signals(b)
    cases = _violations(b, findings, volume, complaints, takedowns)
    _repairs(b, cases)
    _negative_lists(b, cases, late)
    _inspections(b, complaints)
    _honours(b)
    return _frames(b, offset, codes)


def _draw_entities(b: _Block) -> None:
    m, g, rng = b.m, b.g, b.rng
    b.agency = rng.random(m) < P_AGENCY
    u = rng.random(m)
    b.individual = ~b.agency & (u < P_INDIVIDUAL)
    b.law_firm = b.agency & (u < P_LAW_FIRM)
    company = ~b.agency & ~b.individual
    b.industry = np.empty(m, dtype=np.int64)
    for sel, weights in ((company, _IND_COMPANY), (b.individual, _IND_INDIVIDUAL)):
        letters = np.array([INDUSTRIES.index(k) for k in weights])
        w = np.array(list(weights.values()))
        b.industry[sel] = rng.choice(letters, int(sel.sum()), p=w / w.sum())
    # agencies: 7520 知识产权服务 is in M (GB/T 4754-2017); older registrations and law firms are in L
    b.industry[b.agency] = np.where(rng.random(int(b.agency.sum())) < 0.7, INDUSTRIES.index("M"), INDUSTRIES.index("L"))
    b.industry[b.law_firm] = INDUSTRIES.index("L")

    w = np.array([r[2] for r in REGIONS])
    r = rng.choice(len(REGIONS), m, p=w / w.sum())
    b.region = np.array([x[0] for x in REGIONS])[r]
    b.city = np.array([x[1] for x in REGIONS])[r]
    region_shift = np.array([x[3] for x in REGIONS])[r]

    # Registration: some long established, then a steady, slowly growing stream through the window.
    before = rng.random(m) < np.where(b.individual, 0.25, 0.45)
    age_days = (rng.exponential(8.0, m) * 365.25).astype(np.int64) + 1
    old = np.maximum(g.start - age_days, _day(date(1980, 1, 1)) + rng.integers(0, 3650, m))
    new = g.start + (rng.random(m) ** 0.85 * (g.end - g.start + 1)).astype(np.int64)
    b.reg_day = np.where(before, old, new)

    mu = np.where(b.agency, np.log(50), np.where(b.individual, np.log(3), np.log(150)))
    b.log_cap = mu + 0.4 * (b.industry == _C) + rng.normal(0, np.where(b.individual, 1.1, 1.5), m)
    cap = np.exp(b.log_cap)
    nice = np.array([1, 2, 3, 5, 10])
    mag = 10.0 ** np.floor(np.log10(cap))
    nice_cap = nice[np.argmin(np.abs(cap[:, None] / mag[:, None] - nice), axis=1)] * mag
    b.capital = np.maximum(
        np.where(rng.random(m) < 0.55, nice_cap, np.where(cap < 10, np.round(cap, 2), np.round(cap))), 0.01
    )
    b.capital_null = rng.random(m) < np.where(b.individual, 0.3, 0.02)

    p_online = _by_industry(_ONLINE_BY_IND, b.industry, _ONLINE_OTHER) + 0.15 * b.individual
    b.online = rng.random(m) < np.where(b.agency, 0.05, p_online)
    p_quiet = np.where(b.agency, P_QUIET["agency"], np.where(b.individual, P_QUIET["individual"], P_QUIET["company"]))
    b.quiet = rng.random(m) < p_quiet
    b.level = (
        rng.normal(0, 1, m)
        + 0.25 * b.individual
        + 0.2 * b.online
        + 0.15 * b.agency
        - 0.12 * (b.log_cap - np.log(150))
        + region_shift
    )


_REL = {r: i for i, r in enumerate(RELATION_TYPES)}


def _relations(b: _Block) -> None:
    """Links between the block's entities and the part of risk they carry (the parameters above).

    Drawn from a generator of their own, so the rest of the block's draws are those of a world without
    links; the effects reach the events only through the entities' levels and ``link_shift``."""
    m, g = b.m, b.g
    rng = np.random.default_rng(b.rng.bit_generator.seed_seq.spawn(1)[0])
    b.link_shift = np.zeros((m, g.n), dtype=np.float32)
    firms = np.flatnonzero(~b.agency)
    agencies = np.flatnonzero(b.agency)
    parts: list[tuple[np.ndarray, ...]] = []

    def begin(a: np.ndarray, c: np.ndarray, spread: bool = True) -> np.ndarray:
        # a link begins once both exist (no earlier than two years before the window): at some point up to
        # the end, or (``spread`` False: one group from the start) within two months
        earliest = np.maximum(np.maximum(b.reg_day[a], b.reg_day[c]), g.start - 730)
        span = np.maximum(g.end - earliest, 1) if spread else np.minimum(np.maximum(g.end - earliest, 1), 60)
        return earliest + (rng.random(len(a)) * span).astype(np.int64)

    def add(a: np.ndarray, c: np.ndarray, relation: str, start: np.ndarray, stop: np.ndarray) -> None:
        late = rng.random(len(a)) < P_LATE_LINK
        recorded = start + np.where(late, rng.integers(60, 720, len(a)), rng.integers(0, 45, len(a)))
        parts.append((a, c, np.full(len(a), _REL[relation], np.int8), start, stop, recorded))

    # groups under one legal representative: a first member (often older) and one to three others
    grouped = rng.permutation(firms[rng.random(len(firms)) < P_GROUPED])
    sizes = rng.integers(2, 5, max(len(grouped) // 2, 1))
    ends = np.cumsum(sizes)
    keep = ends <= len(grouped)
    ends, firsts = ends[keep], (ends - sizes)[keep]
    group_of = np.repeat(np.arange(len(ends)), ends - firsts)
    members = grouped[: len(group_of)]
    b.level[members] += rng.normal(0, GROUP_SD, len(ends))[group_of]
    turns = rng.random(len(ends)) < P_GROUP_TURN
    size = np.where(turns, rng.normal(*GROUP_TURN, len(ends)), 0.0).astype(np.float32)
    when = rng.integers(0, g.n, len(ends))[group_of]
    head = firsts[group_of]
    member = np.arange(len(group_of))
    others = member != head
    when = when + np.where(others, rng.integers(*GROUP_LAG, len(group_of)), 0)
    b.link_shift[members] += size[group_of, None] * (np.arange(g.n)[None, :] >= when[:, None])
    a, c = grouped[head[others]], grouped[member[others]]
    shell = rng.random(len(c)) < P_SHELL
    b.reg_day[c[shell]] = np.maximum(
        b.reg_day[c[shell]], np.minimum(b.reg_day[a[shell]] + rng.integers(30, 2000, int(shell.sum())), g.end - 30)
    )
    start = begin(a, c, spread=False)
    add(a, c, "shared_legal_representative", start, np.full(len(a), _NULL))
    shares = rng.random(len(a)) < P_GROUP_SHARES
    add(a[shares], c[shares], "shareholder", start[shares], np.full(int(shares.sum()), _NULL))

    # agencies and their clients
    if len(agencies) and len(firms):
        mill = rng.random(len(agencies)) < P_MILL
        b.level[agencies[mill]] += MILL_AGENCY_LEVEL
        turned = rng.integers(-12, g.n, len(agencies))  # the month it turns (before the grid: from the start)
        rise = np.arange(g.n)[None, :] >= (turned + rng.integers(*MILL_LAG, len(agencies)))[mill, None]
        b.link_shift[agencies[mill]] += np.float32(MILL_AGENCY_SHIFT) * rise
        clients = firms[rng.random(len(firms)) < P_CLIENT]
        weight = np.where(mill, MILL_WEIGHT, 1.0)
        pick = rng.choice(len(agencies), len(clients), p=weight / weight.sum())
        start = begin(agencies[pick], clients)
        leaves = rng.random(len(clients)) < P_CLIENT_LEAVES
        stop = np.where(leaves, start + 90 + rng.exponential(700, len(clients)).astype(np.int64), _NULL)
        add(agencies[pick], clients, "agency_client", start, stop)
        served = mill[pick]
        begun = g.first[None, :] >= start[served, None]
        ended = (stop[served, None] != _NULL) & (g.first[None, :] >= stop[served, None])
        milling = np.arange(g.n)[None, :] >= turned[pick[served], None]
        b.link_shift[clients[served]] += np.float32(MILL_CLIENT_SHIFT) * (begun & ~ended & milling)

    # shared addresses: pairs of otherwise unrelated enterprises
    pairs = rng.permutation(firms[rng.random(len(firms)) < P_SHARED_ADDRESS])
    half = len(pairs) // 2
    a, c = pairs[:half], pairs[half : 2 * half]
    start = begin(a, c)
    moves = rng.random(half) < 0.3
    add(a, c, "shared_address", start, np.where(moves, start + 180 + rng.integers(0, 1500, half), _NULL))

    b.links = tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def _draw_propensity(b: _Block) -> None:
    m, g, rng = b.m, b.g, b.rng
    t = np.arange(g.n)
    reg_month = np.searchsorted(g.first, b.reg_day, side="right") - 1  # < 0 before the grid
    b.age = t[None, :] - reg_month[:, None]
    b.alive = b.age >= 0
    z = np.empty((m, g.n), dtype=np.float32)
    drift = rng.normal(0, Z_DRIFT_SIGMA / np.sqrt(1 - Z_DRIFT_PHI**2), m)
    for month in range(g.n):
        drift = Z_DRIFT_PHI * drift + rng.normal(0, Z_DRIFT_SIGMA, m)
        z[:, month] = drift
    jump = np.where(rng.random(m) < P_REGIME_CHANGE, rng.normal(0, REGIME_JUMP_SD, m), 0.0)
    when = rng.integers(0, g.n, m)
    z += (b.level[:, None] + jump[:, None] * (t[None, :] >= when[:, None])).astype(np.float32)
    z += b.link_shift
    b.z = z
    b.ez = np.exp(np.minimum(z, Z_CAP))  # rates saturate: even the worst actor is only caught so often
    b.dormant = t[None, :] >= np.where(rng.random(m) < P_DORMANT, rng.integers(0, g.n, m), g.n + 1)[:, None]
    young_thin = (b.age >= 0) & (b.age < 24) & ((b.log_cap < np.log(30)) & b.online)[:, None]
    era = np.clip(0.85 + 0.035 * (g.year - 2016), 0.7, 1.3)  # enforcement intensifies over the years
    b.adverse_mult = (
        b.alive
        * np.where(young_thin, YOUNG_THIN_MULT, 1.0)
        * era[None, :]
        * np.where(b.quiet, QUIET_ADVERSE_MULT, 1.0)[:, None]
    )


def _bursts(b: _Block, logit: np.ndarray, era: np.ndarray, median: float, sd: float, lo: int, hi: int):
    """Filing bursts: entity-quarters with a sudden mass of applications, split into 1-3 batches.

    Returns (entity, quarter, total) per burst and (entity, day, quantity) per batch."""
    g, rng = b.g, b.rng
    q_n = (g.n + 2) // 3
    first_month = np.minimum(np.arange(q_n) * 3, g.n - 1)
    live = b.alive[:, first_month] & ~b.dormant[:, first_month] & ~b.quiet[:, None]
    # a mill agency's clients burst while it serves them
    p = _sigmoid(logit[:, None] + MILL_BURST * b.link_shift[:, first_month]) * era[first_month][None, :] * live
    ent, quarter = np.nonzero(rng.random((b.m, q_n)) < p)
    total = np.clip(np.exp(np.log(median) + rng.normal(0, sd, len(ent))), lo, hi).astype(np.int64)
    parts = 1 + rng.binomial(2, 0.5, len(ent))
    i = np.repeat(np.arange(len(ent)), parts)
    month = np.minimum(quarter[i] * 3 + rng.integers(0, 3, len(i)), g.n - 1)
    return (ent, quarter, total), (ent[i], g.random_day(rng, month), np.maximum(total[i] // parts[i], 5))


def _filings(b: _Block) -> tuple[dict[str, _Cases], dict[str, np.ndarray]]:
    """Patent and trademark filings, bursts, grants and the abnormal-filing findings bursts lead to."""
    m, g, rng, a = b.m, b.g, b.rng, b.level
    active = ~b.quiet
    p_patent = np.where(
        b.agency,
        np.where(b.law_firm, 0.35, 0.75),
        np.where(b.individual, 0.02, _by_industry(_PATENT_FILER_BY_IND, b.industry, 0.08)),
    )
    p_tm = np.where(b.agency, 0.8, np.where(b.individual, 0.12, _by_industry(_TM_FILER_BY_IND, b.industry, 0.15)))
    b.patent_filer = active & (rng.random(m) < p_patent)
    b.tm_filer = active & (rng.random(m) < p_tm)
    # compliant innovators file more: volume means low risk for an enterprise, high risk for an agency
    size = np.exp(0.25 * (b.log_cap - np.log(150))) * np.where(b.agency, 1.0, np.exp(-0.35 * a))
    lam_p = np.where(b.agency, LAMBDA_PATENT["agency"], LAMBDA_PATENT["enterprise"]) * size
    lam_t = np.where(b.agency, LAMBDA_TRADEMARK["agency"], LAMBDA_TRADEMARK["enterprise"]) * size
    b.lam_patent = np.minimum(lam_p * np.exp(rng.normal(0, 1.3, m)), MAX_BATCHES) * b.patent_filer
    lam_t = np.minimum(lam_t * np.exp(rng.normal(0, 1.2, m)), MAX_BATCHES) * b.tm_filer
    b.batch_patent = 1 + np.exp(np.log(np.where(b.agency, 3.0, 1.2)) + rng.normal(0, 0.7, m))
    batch_t = 1 + np.exp(np.log(np.where(b.agency, 2.5, 0.8)) + rng.normal(0, 0.8, m))
    b.grant_ratio = np.clip(rng.beta(6, 5, m) - 0.06 * a, 0.05, 0.95)

    # Filing activity switches on and off: gaps of months to years.
    on = np.empty((m, g.n), dtype=bool)
    state = rng.random(m) < 0.75
    for month in range(g.n):
        state = state ^ (rng.random(m) < np.where(state, 1 / 36, 1 / 15))
        on[:, month] = state
    working = b.alive & ~b.dormant & on
    del on

    # patents: regular batches and bursts (common in the subsidy era, curbed by the 2021 campaign)
    pe, pm = _expand(_poisson(rng, b.lam_patent[:, None] * working))
    pq = rng.geometric(1 / b.batch_patent[pe])
    p_occ = g.random_day(rng, pm)
    burst_logit = BURST_LOGIT + 0.9 * a + 1.3 * b.agency + 0.8 * b.patent_filer
    (be, bq, btotal), (bbe, bb_occ, bbq) = _bursts(
        b, burst_logit, np.where(g.year < 2021, 1.0, 0.35), 60, 0.9, 15, 2000
    )
    f_ent, f_occ, f_qty = _cat(pe, bbe), _cat(p_occ, bb_occ), _cat(pq, bbq)
    b.ev.add("patent_filed", f_ent, f_occ, f_qty)
    # grants follow filings: a share of each batch (a quarter of the usual for bursts), 5-36 months later
    ratio = _cat(b.grant_ratio[pe], 0.25 * b.grant_ratio[bbe])
    granted = rng.binomial(f_qty, ratio)
    sel = granted > 0
    utility = rng.random(int(sel.sum())) < 0.6
    lag = np.where(utility, rng.integers(150, 400, utility.size), rng.integers(500, 1100, utility.size))
    b.ev.add("patent_granted", f_ent[sel], f_occ[sel] + lag, granted[sel])
    # abnormal-filing findings follow bursts, mostly when the grant ratio is low
    detect = np.where(g.year[np.minimum(bq * 3, g.n - 1)] < 2021, 0.45, 1.0)  # CNIPA 2021 campaign
    p_find = _sigmoid(-1.0 + 9.0 * (0.4 - b.grant_ratio[be]) + 0.6 * b.agency[be] + 0.4 * a[be]) * detect
    found = rng.random(len(be)) < p_find
    abnormal = _Cases(
        be[found],
        g.month_end(bq[found] * 3 + 2) + rng.integers(1, 150, int(found.sum())),
        grave=np.where(btotal[found] >= 300, 0.25, 0.0),
    )

    # trademarks: regular batches and hoarding bursts
    te, tm = _expand(_poisson(rng, lam_t[:, None] * working))
    tq = rng.geometric(1 / batch_t[te])
    t_occ = g.random_day(rng, tm)
    tm_logit = TM_BURST_LOGIT + 0.9 * a + 1.3 * b.agency + 0.8 * b.tm_filer
    (tbe, tbq, tbtotal), (tbbe, tbb_occ, tbbq) = _bursts(b, tm_logit, np.ones(g.n), 80, 1.0, 20, 3000)
    b.ev.add("trademark_filed", _cat(te, tbbe), _cat(t_occ, tbb_occ), _cat(tq, tbbq))
    detect = np.where(g.year[np.minimum(tbq * 3, g.n - 1)] < 2019, 0.4, 1.0)  # Trademark Law art. 4, 2019
    p_mal = _sigmoid(-1.5 + 0.7 * a[tbe] + 0.8 * b.agency[tbe] + 0.5 * np.log(tbtotal / 80)) * detect
    mal = rng.random(len(tbe)) < p_mal
    malicious = _Cases(
        tbe[mal],
        g.month_end(tbq[mal] * 3 + 2) + rng.integers(1, 180, int(mal.sum())),
        grave=np.where(tbtotal[mal] >= 300, 0.15, 0.0),
    )

    # applications per month, for the agency-misconduct and abnormal-filing hazards
    patents = _matrix(f_ent, g.month_of(f_occ), f_qty.astype(np.float64), (m, g.n))
    both = patents + _matrix(te, tm, tq.astype(np.float64), (m, g.n))
    volume = {"patents_12": _trailing(patents, 12), "all_12": _trailing(both, 12)}
    return {"abnormal_patent_filing": abnormal, "malicious_trademark_filing": malicious}, volume


def _signals(b: _Block):
    """Complaints, platform takedowns and late annual reports."""
    g, rng = b.g, b.rng
    trading = b.alive & ~b.quiet[:, None]
    ind = _by_industry(_IP_BY_IND, b.industry, 0.5)
    rate = H_COMPLAINT * b.ez * ((1 + 1.5 * b.online) * ind)[:, None] * trading * np.where(b.dormant, 0.2, 1.0)
    ce, cm = _expand(_poisson(rng, rate))
    c_occ = g.random_day(rng, cm)
    b.ev.add("complaint_received", ce, c_occ, rng.geometric(0.75, len(ce)))
    rate = H_TAKEDOWN * b.ez**1.1 * (b.online & ~b.quiet)[:, None] * b.alive * ~b.dormant
    takedowns = _poisson(rng, rate)
    de, dm = _expand(takedowns)
    b.ev.add("platform_takedown", de, g.random_day(rng, dm), rng.geometric(0.35, len(de)))

    # annual reports are due on 30 June for the previous year, from the first full year on
    jul = _days_of(g.years, 7)
    jm = g.month_of(jul)
    due = (b.reg_day[:, None] < _days_of(g.years, 1)[None, :]) & (jul[None, :] >= g.first[0])
    logit = -4.1 + 0.9 * b.z[:, jm] + 2.8 * b.dormant[:, jm] + 0.6 * b.individual[:, None] + 0.5 * (b.age[:, jm] < 24)
    late = (rng.random(due.shape) < _sigmoid(logit)) & due & ~b.quiet[:, None]
    le, ly = np.nonzero(late)
    _, l_rec = b.ev.add("annual_report_late", le, jul[ly])
    return (ce, c_occ), takedowns, (le, l_rec)


def _violations(b: _Block, findings, volume, complaints, takedowns) -> dict[str, _Cases]:
    """Confirmed violations: direct hazards, referrals, repeat offences, refusals, commitment breaches."""
    g, rng, ez = b.g, b.rng, b.ez
    firm = ~b.agency
    mult = b.adverse_mult

    def draw(rate: np.ndarray, rows: np.ndarray | None = None) -> _Cases:
        e, mo = _expand(_poisson(rng, rate * (mult if rows is None else mult[rows])))
        if rows is not None:
            e = rows[e]
        return _Cases(e, g.random_day(rng, mo))

    # infringement: concentrated in online sellers of goods; platforms refer repeat takedowns
    goods_online = b.online & np.isin(b.industry, [_C, _F])
    ind = _by_industry(_IP_BY_IND, b.industry, 0.5)
    base = (H_INFRINGEMENT * ind * np.where(goods_online, GOODS_ONLINE_MULT, 0.8) * firm)[:, None] * ez
    excess = np.clip(_trailing(takedowns, 6) - 2, 0, 5)
    referral = H_REFERRAL * (b.online & firm)[:, None] * excess * np.sqrt(ez)
    ip = draw(base + referral)
    del base, referral
    cp = draw((H_COUNTERFEIT * _by_industry(_CP_BY_IND, b.industry, 0.5) * firm)[:, None] * ez)
    ij = draw((H_JUDGMENT * (1 + 1.5 * b.patent_filer) * firm)[:, None] * ez**0.8)
    rows = np.flatnonzero(b.agency)
    am = draw(H_AGENCY * ez[rows] * (1 + (volume["all_12"][rows] / 150) ** 1.5), rows)
    era = np.where(g.year < 2021, 0.45, 1.0)[None, :]
    heavy = (H_ABNORMAL_BASE * (1 + 2 * b.agency) * 2 * (1 - b.grant_ratio) * b.patent_filer)[:, None]
    ap = findings["abnormal_patent_filing"]
    extra = draw(heavy * ez * (1 + volume["patents_12"] / 100) * era)
    ap.extend(extra.ent, extra.occ)
    ap.grave = _cat(ap.grave, np.zeros(len(extra.ent)))
    fm = draw((H_FALSE_MATERIALS * (1 + b.patent_filer + b.tm_filer))[:, None] * ez)

    # founded complaints become penalties, judgments or agency sanctions; complaints against genuine
    # innovators (a high grant ratio) are mostly unfounded
    ce, c_occ = complaints
    innovator = b.patent_filer[ce] & (b.grant_ratio[ce] > 0.6)
    founded = rng.random(len(ce)) < _sigmoid(-2.3 + b.z_at(ce, c_occ) - 2.0 * innovator)
    fe, f_occ = ce[founded], c_occ[founded] + rng.integers(20, 150, int(founded.sum()))
    u = rng.random(len(fe))
    to_agency = b.agency[fe]
    ip.extend(fe[~to_agency & (u < 0.65)], f_occ[~to_agency & (u < 0.65)])
    sel = ~to_agency & (u >= 0.65) & (u < 0.85)
    cp.extend(fe[sel], f_occ[sel])
    sel = ~to_agency & (u >= 0.85)
    ij.extend(fe[sel], f_occ[sel] + rng.integers(60, 300, int(sel.sum())))  # a lawsuit takes longer
    am.extend(fe[to_agency], f_occ[to_agency])

    # repeat offences: a sanctioned entity that has not changed its ways is often caught again soon
    for cases in (ip, cp):
        e, d = cases.ent, cases.occ
        for _ in range(2):
            again = rng.random(len(e)) < _sigmoid(P_REPEAT_LOGIT + 0.8 * b.z_at(e, d))
            e, d = e[again], d[again] + rng.integers(30, 240, int(again.sum()))
            cases.extend(e, d)

    # one enforcement action often ends in several decisions (several products, shops or marks)
    for cases in (ip, cp):
        extra = np.minimum(rng.poisson(CASE_EXTRA_DECISIONS * np.exp(0.3 * b.z_at(cases.ent, cases.occ))), 5)
        i = np.repeat(np.arange(len(cases.ent)), extra)
        cases.extend(cases.ent[i], cases.occ[i] + rng.integers(0, 21, len(i)))

    ip.amount = _money(rng, 20_000, 0.9, len(ip.ent), 5_000, 500_000, 0.3 * b.z_at(ip.ent, ip.occ))
    cp.amount = _money(rng, 15_000, 0.9, len(cp.ent), 5_000, 500_000, 0.3 * b.z_at(cp.ent, cp.occ))
    am.amount = _money(rng, 30_000, 0.6, len(am.ent), 10_000, 100_000)
    ij.amount = _money(rng, 80_000, 1.2, len(ij.ent), 10_000, 5_000_000)  # damages awarded
    ip.grave = np.where(ip.amount >= 200_000, 0.3, 0.0)
    cp.grave = np.where(cp.amount >= 150_000, 0.5, 0.0)
    am.grave = np.full(len(am.ent), 0.05)
    fm.grave = np.full(len(fm.ent), 0.05)

    # refusals to comply follow penalties
    pen_e, pen_occ = _cat(ip.ent, cp.ent, am.ent), _cat(ip.occ, cp.occ, am.occ)
    refuse = rng.random(len(pen_e)) < _sigmoid(P_REFUSAL_LOGIT + 0.9 * b.z_at(pen_e, pen_occ))
    rc = _Cases(pen_e[refuse], pen_occ[refuse] + rng.integers(60, 300, int(refuse.sum())))
    rc.grave = np.full(len(rc.ent), 0.15)

    # credit commitments (for subsidies, fee reductions, licences; more common from 2019) and breaches
    # of the ones the data shows (signed inside the window, after registration)
    rate = (H_COMMITMENT * (1 + 2 * (b.patent_filer | b.tm_filer)) * ~b.quiet)[:, None] * b.alive
    ke, km = _expand(_poisson(rng, rate * np.where(g.year >= 2019, 2.0, 1.0)[None, :]))
    k_occ = g.random_day(rng, km)
    b.ev.add("commitment_signed", ke, k_occ)
    visible = (k_occ >= g.start) & (k_occ >= b.reg_day[ke])
    breach = visible & (rng.random(len(ke)) < _sigmoid(P_BREACH_LOGIT + 1.1 * b.z[ke, km]))
    cb = _Cases(ke[breach], k_occ[breach] + rng.integers(30, 540, int(breach.sum())))

    cases = {
        "infringement_penalty": ip,
        "counterfeit_patent_penalty": cp,
        "infringement_judgment": ij,
        "agency_misconduct": am,
        "abnormal_patent_filing": ap,
        "malicious_trademark_filing": findings["malicious_trademark_filing"],
        "false_materials": fm,
        "refusal_to_comply": rc,
        "commitment_breach": cb,
    }
    for code, c in cases.items():
        c.part, c.rec = b.ev.add(code, c.ent, c.occ, amount=c.amount)
    return cases


_REPAIRABLE = (
    "infringement_penalty",
    "counterfeit_patent_penalty",
    "agency_misconduct",
    "abnormal_patent_filing",
    "malicious_trademark_filing",
    "false_materials",
    "commitment_breach",
    "refusal_to_comply",
)
_UNTRUSTWORTHY = (
    "abnormal_patent_filing",
    "malicious_trademark_filing",
    "false_materials",
    "commitment_breach",
    "refusal_to_comply",
    "agency_misconduct",
)


def _repairs(b: _Block, cases: dict[str, _Cases]) -> None:
    """Credit repair 6+ months after publication, more often for entities that have since reformed."""
    rng = b.rng
    for code in _REPAIRABLE:
        c = cases[code]
        yes = rng.random(len(c.ent)) < _sigmoid(P_REPAIR_LOGIT - 0.8 * b.z_at(c.ent, c.rec + 200))
        wait = REPAIR_MIN_DAYS + rng.exponential(150, len(c.ent)).astype(np.int64)
        c.repaired = np.where(yes, c.rec + wait, _NULL)
        b.ev.repair(c.part, c.repaired)
        # a repair application comes with a signed credit commitment (信用修复承诺书)
        b.ev.add("commitment_signed", c.ent[yes], c.repaired[yes] - rng.integers(7, 60, int(yes.sum())))


def _negative_lists(b: _Block, cases: dict[str, _Cases], late) -> None:
    """Untrustworthy, serious-violation and abnormal-operation entries, and the months each entity spends
    on one (key supervision)."""
    g, rng = b.g, b.rng
    # untrustworthy (CNIPA, 2022): about one year, or until repaired
    for code in _UNTRUSTWORTHY:
        c = cases[code]
        entered = c.rec + rng.integers(0, 21, len(c.ent))
        expiry = entered + rng.integers(365, 411, len(c.ent))
        removed = np.where(c.repaired != _NULL, np.minimum(c.repaired, expiry), expiry)
        b.li.add("untrustworthy", c.ent, entered, np.maximum(removed, entered))
    # serious violations (SAMR Order 44): grave cases only
    grave_e, grave_day = [], []
    for c in cases.values():
        if c.grave is not None:
            s = rng.random(len(c.ent)) < c.grave
            grave_e.append(c.ent[s])
            grave_day.append(c.rec[s])
    # abnormal operation after a late annual report; most file it and are moved out
    le, l_rec = late
    listed = rng.random(len(le)) < 0.8
    ao_e = le[listed]
    ao_in = l_rec[listed] + rng.integers(0, 31, len(ao_e))
    fixed = rng.random(len(ao_e)) < 0.85
    ao_out = np.where(fixed, ao_in + 20 + rng.exponential(120, len(ao_e)).astype(np.int64), _NULL)
    # ... and a few because the registered address cannot be reached, with no event behind them
    ue = np.flatnonzero(rng.random(b.m) < 0.001 * (g.end - g.first[0]) / 365.25)
    since = np.maximum(b.reg_day[ue], g.first[0])
    u_in = since + (rng.random(len(ue)) * (g.end + 1 - since)).astype(np.int64)
    u_out = np.where(rng.random(len(ue)) < 0.6, u_in + 30 + rng.exponential(200, len(ue)).astype(np.int64), _NULL)
    ao_e, ao_in, ao_out = _cat(ao_e, ue), _cat(ao_in, u_in), _cat(ao_out, u_out)
    b.li.add("abnormal_operation", ao_e, ao_in, ao_out)
    # three years in the abnormal-operation directory without putting it right: serious violation
    stuck = ((ao_out == _NULL) | (ao_out > ao_in + LAPSE_DAYS)) & (rng.random(len(ao_e)) < 0.1)
    grave_e.append(ao_e[stuck])
    grave_day.append(ao_in[stuck] + LAPSE_DAYS - 30)
    sv_e = _cat(*grave_e)
    sv_in = _cat(*grave_day) + 30 + rng.integers(0, 31, len(sv_e))
    early = rng.random(len(sv_e)) < 0.35  # early removal on application after a year; else lapse
    b.li.add("serious_violation", sv_e, sv_in, np.where(early, sv_in + 365 + rng.integers(0, 400, len(sv_e)), _NULL))

    kind, ent, entered, removed = b.li.arrays()
    lapse = np.where(kind == _LIST["serious_violation"], entered + LAPSE_DAYS, _NEVER)
    until = np.where(removed == _NULL, lapse, removed)
    diff = np.zeros((b.m, g.n + 1), dtype=np.int32)
    np.add.at(diff, (ent, g.month_of(entered)), 1)
    ends = until <= g.end
    np.add.at(diff, (ent[ends], g.month_of(until[ends])), -1)
    b.on_list = np.cumsum(diff[:, : g.n], axis=1) > 0


def _inspections(b: _Block, complaints) -> None:
    """Random ("双随机") inspections, more often on negative lists and, after the tiered rollout, for
    entities the regulator's own (noisy) assessment finds risky; complaints trigger targeted ones."""
    g, rng = b.g, b.rng
    tiered = (g.first >= _day(date(2022, 7, 1)))[None, :]
    tier_mult = np.clip(np.exp(0.7 * (b.level + rng.normal(0, 0.8, b.m)) - 0.25), 0.3, 4.0)[:, None]
    rate = (H_INSPECTION * np.where(b.quiet, 0.5, 1.0))[:, None] * b.alive * np.where(b.on_list, 3.0, 1.0)
    ie, im = _expand(_poisson(rng, rate * np.where(tiered, tier_mult, 1.0)))
    ce, c_occ = complaints
    targeted = rng.random(len(ce)) < 0.12
    ie = _cat(ie, ce[targeted])
    i_occ = _cat(g.random_day(rng, im), c_occ[targeted] + rng.integers(10, 90, int(targeted.sum())))
    failed = rng.random(len(ie)) < _sigmoid(P_INSPECTION_FAIL_LOGIT + b.z_at(ie, i_occ))
    b.ev.add("inspection_failed", ie[failed], i_occ[failed])
    b.ev.add("inspection_passed", ie[~failed], i_occ[~failed])


def _honours(b: _Block) -> None:
    """Honours for strong, clean filers, IP-management certifications, and the red list."""
    g, rng = b.g, b.rng
    typ, ent, _, rec, *_ = b.ev.arrays()
    adverse = np.isin(typ, _ADVERSE)
    adverse_key = np.sort(ent[adverse] * _KEY + rec[adverse])
    strong = np.flatnonzero(b.patent_filer & (b.lam_patent * b.batch_patent >= 0.8) & (b.level < 0.3) & ~b.agency)
    red_e, red_in = [], []
    for code, month, p, subsidy, p_subsidy in (
        ("honor_advantage", 11, 0.2, 100_000, 0.5),
        ("honor_demonstration", 12, 0.06, 300_000, 0.7),
    ):
        day = _days_of(g.years, month)[None, :] + rng.integers(0, 28, (len(strong), len(g.years)))
        cand = (rng.random(day.shape) < p) & (day >= b.reg_day[strong, None] + 3 * 365)
        i, y = np.nonzero(cand)
        he, hd = strong[i], day[i, y]
        # no adverse record in the last 3 years and not on a negative list
        recent = np.searchsorted(adverse_key, he * _KEY + hd, side="right") - np.searchsorted(
            adverse_key, he * _KEY + hd - LAPSE_DAYS, side="right"
        )
        ok = (recent == 0) & ~b.on_list[he, g.month_of(hd)]
        he, hd = he[ok], hd[ok]
        amount = np.where(
            rng.random(len(he)) < p_subsidy, _money(rng, subsidy, 0.5, len(he), 10_000, 2_000_000), np.nan
        )
        _, h_rec = b.ev.add(code, he, hd, amount=amount)
        red_e.append(he)
        red_in.append(h_rec)
    certified = (b.patent_filer & (b.capital >= 100))[:, None] & (
        rng.random((b.m, len(g.years))) < 0.04 * np.exp(-0.3 * b.level)[:, None]
    )
    ce, cy = np.nonzero(certified)
    b.ev.add("ipms_certified", ce, _days_of(g.years, 1)[cy] + rng.integers(0, 365, len(ce)))
    # red list: entered on the honour; out at the first later adverse record, a renewal, or after 3 years
    r_e, r_in = _cat(*red_e), _cat(*red_in)
    order = np.lexsort((r_in, r_e))
    r_e, r_in = r_e[order], r_in[order]
    padded = np.append(adverse_key, -1)  # -1: no later adverse record
    nxt = padded[np.searchsorted(adverse_key, r_e * _KEY + r_in, side="right")]
    first_adverse = np.where(nxt // _KEY == r_e, nxt % _KEY, _NEVER)
    renewal = np.where(np.append(r_e[1:] == r_e[:-1], False), np.append(r_in[1:], 0), _NEVER)
    r_out = np.minimum(np.minimum(first_adverse, renewal), r_in + LAPSE_DAYS)
    keep = r_out > r_in  # a same-day renewal replaces the entry
    b.li.add("red", r_e[keep], r_in[keep], r_out[keep])


# ---------------------------------------------------------------------------------------------------
# From arrays to contract frames
# ---------------------------------------------------------------------------------------------------
_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str" dtype


def _str(values: pa.Array | np.ndarray | list) -> pd.Series:
    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, type=pa.string())
    return pd.Series(pd.array(arr, dtype=_STR))


def _dates(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).view("datetime64[D]").astype("datetime64[s]")


def _frames(b: _Block, offset: int, codes: _CodeKey) -> _Piece:
    g, rng = b.g, b.rng
    typ, ent, occ, rec, qty, amount, repaired = b.ev.arrays()
    keep = (occ >= np.maximum(b.reg_day[ent], g.start)) & (rec <= g.end)
    repaired = np.where(repaired > g.end, _NULL, repaired)
    order = np.flatnonzero(keep)
    order = order[np.lexsort((typ[order], rec[order], occ[order], ent[order]))]
    typ, ent, occ, rec, qty, amount, repaired = (x[order] for x in (typ, ent, occ, rec, qty, amount, repaired))

    kind, l_ent, entered, removed = b.li.arrays()
    lapsed = (kind == _LIST["serious_violation"]) & (removed == _NULL) & (entered + LAPSE_DAYS <= g.start)
    gone = (removed != _NULL) & (removed < g.start)  # over before the window: not exported
    keep = (entered <= g.end) & (entered >= b.reg_day[l_ent]) & ~lapsed & ~gone
    removed = np.where(removed > g.end, _NULL, removed)
    order = np.flatnonzero(keep)
    order = order[np.lexsort((kind[order], entered[order], l_ent[order]))]
    kind, l_ent, entered, removed = (x[order] for x in (kind, l_ent, entered, removed))

    prefix = np.where(b.law_firm, "31", np.where(b.individual, "92", "91"))
    new_style = b.reg_day >= _day(date(2015, 10, 1))
    ids = pa.array(_codes(np.arange(offset, offset + b.m), prefix, b.region, new_style, codes), type=pa.string())
    entities = pd.DataFrame(
        {
            "entity_id": _str(ids),
            "name": _str(_names(rng, b).tolist()),
            "kind": _str(np.where(b.agency, "agency", "enterprise").tolist()),
            "industry": _str(np.array(INDUSTRIES)[b.industry].tolist()),
            "region": _str(b.region.tolist()),
            "registered_on": _dates(b.reg_day),
            "registered_capital": np.where(b.capital_null, np.nan, b.capital),
            "online_seller": b.online.astype(bool),
            # The demo registries do not report business premises: the optional column is there, unknown.
            "locations": pd.array([pd.NA] * len(b.reg_day), dtype="Int64"),
        }
    )
    event_codes = pa.array(list(EVENT_CODES), type=pa.string())
    events = pd.DataFrame(
        {
            "entity_id": _str(ids.take(pa.array(ent))),
            "event_type": _str(event_codes.take(pa.array(typ.astype(np.int64)))),
            "occurred_on": _dates(occ),
            "recorded_on": _dates(rec),
            "quantity": qty.astype(np.int64),
            "amount": amount.astype(np.float64),
            "repaired_on": _dates(repaired),
        }
    )
    list_names = pa.array(list(LIST_NAMES), type=pa.string())
    lists = pd.DataFrame(
        {
            "entity_id": _str(ids.take(pa.array(l_ent))),
            "list": _str(list_names.take(pa.array(kind.astype(np.int64)))),
            "entered_on": _dates(entered),
            "removed_on": _dates(removed),
            "basis": _basis(rng, kind, entered, b.city[l_ent]),
        }
    )
    relations, r_ent = _links_frame(b, ids)
    return _Piece(b.m, entities, events, lists, ent, l_ent, relations, r_ent)


def _links_frame(b: _Block, ids: pa.Array) -> tuple[pd.DataFrame, np.ndarray]:
    """The block's links as relations rows (sorted by the first entity), those recorded by the end only;
    an end after the window is not known yet."""
    g = b.g
    if not b.links:
        return _typed_empty(RELATIONS), np.zeros(0, dtype=np.int64)
    a, c, rel, start, stop, recorded = b.links
    order = np.flatnonzero(recorded <= g.end)
    order = order[np.lexsort((rel[order], c[order], a[order]))]
    a, c, rel, start, stop, recorded = (x[order] for x in (a, c, rel, start, stop, recorded))
    stop = np.where(stop > g.end, _NULL, stop)
    relation_names = pa.array(list(RELATION_TYPES), type=pa.string())
    frame = pd.DataFrame(
        {
            "entity_id": _str(ids.take(pa.array(a))),
            "related_id": _str(ids.take(pa.array(c))),
            "relation": _str(relation_names.take(pa.array(rel.astype(np.int64)))),
            "from_on": _dates(start),
            "to_on": _dates(stop),
            "recorded_on": _dates(recorded),
        }
    )
    return frame, a


def _basis(rng: np.random.Generator, kind: np.ndarray, entered: np.ndarray, city: np.ndarray) -> pd.Series:
    """Decision numbers such as 国知局公告第512号 or 丹东市监信〔2023〕12号; some exports leave it empty where
    the list allows it (red, abnormal_operation)."""
    n = len(kind)
    year = (entered.view("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970).astype(str)
    num = rng.integers(1, 600, n).astype(str)
    y = _join("〔", year, "〕")
    out = np.select(
        [kind == _LIST["red"], kind == _LIST["untrustworthy"], kind == _LIST["serious_violation"]],
        [_join("国知办函运字", y, num, "号"), _join("国知局公告第", num, "号"), _join(city, "市监信", y, num, "号")],
        _join(city, "市监异字", y, "第", num, "号"),
    ).astype(object)
    # Never on the untrustworthy or serious-violation list: an entry there without a legal ground is refused.
    optional = (kind != _LIST["untrustworthy"]) & (kind != _LIST["serious_violation"])
    out[(rng.random(n) < 0.08) & optional] = None
    return _str(pa.array(out.tolist(), type=pa.string()))


# ---------------------------------------------------------------------------------------------------
# Pieces of blocks -> chunks
# ---------------------------------------------------------------------------------------------------
@dataclass
class _Piece:
    """Consecutive entities of one block with their events and list entries (sorted by entity)."""

    n: int
    entities: pd.DataFrame
    events: pd.DataFrame  # no event_id yet
    lists: pd.DataFrame
    ev_ent: np.ndarray  # block-local entity index of each event row
    li_ent: np.ndarray
    relations: pd.DataFrame  # each link with the chunk of its entity_id (its related_id may be in another)
    re_ent: np.ndarray
    first: int = 0  # block-local index of the first entity

    def split(self, k: int) -> tuple[_Piece, _Piece | None]:
        """The first ``k`` entities and the rest (None when nothing is left)."""
        if k >= self.n:
            return self, None
        cut = self.first + k
        e, li = np.searchsorted(self.ev_ent, cut), np.searchsorted(self.li_ent, cut)
        r = np.searchsorted(self.re_ent, cut)
        head = _Piece(
            k, self.entities.iloc[:k], self.events.iloc[:e], self.lists.iloc[:li],
            self.ev_ent[:e], self.li_ent[:li], self.relations.iloc[:r], self.re_ent[:r], self.first,
        )  # fmt: skip
        tail = _Piece(
            self.n - k, self.entities.iloc[k:], self.events.iloc[e:], self.lists.iloc[li:],
            self.ev_ent[e:], self.li_ent[li:], self.relations.iloc[r:], self.re_ent[r:], cut,
        )  # fmt: skip
        return head, tail


def _typed_empty(table: Table) -> pd.DataFrame:
    dtypes = {"VARCHAR": _STR, "DATE": "datetime64[s]", "BIGINT": "int64", "DOUBLE": "float64", "BOOLEAN": bool}
    return pd.DataFrame({c.name: pd.Series(dtype=dtypes[c.type.value]) for c in table.columns})


def _assemble(pieces: list[_Piece], next_event: int) -> tuple[World, int]:
    """One chunk: concatenate pieces and number the events globally."""
    if pieces:
        frames = [pd.concat([getattr(p, t) for p in pieces], ignore_index=True) for t in _TABLES]
    else:
        frames = [
            _typed_empty(ENTITIES),
            _typed_empty(EVENTS).drop(columns="event_id"),
            _typed_empty(LISTS),
            _typed_empty(RELATIONS),
        ]
    entities, events, lists, relations = frames
    n = len(events)
    numbers = pc.cast(pa.array(np.arange(next_event, next_event + n, dtype=np.int64)), pa.string())
    ids = pc.binary_join_element_wise("E", pc.utf8_lpad(numbers, width=_EVENT_ID_DIGITS, padding="0"), "")
    events.insert(0, "event_id", _str(ids))
    world = World(
        entities[ENTITIES.column_names].reset_index(drop=True),
        events[EVENTS.column_names],
        lists[LISTS.column_names].reset_index(drop=True),
        relations[RELATIONS.column_names].reset_index(drop=True),
    )
    return world, next_event + n
