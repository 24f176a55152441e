"""The feature catalogue: the one table that says what every model feature is.

Each entry carries its name, dtype, window, bilingual label, the monotone direction relative to risk and
its definition. The feature builder computes from these definitions, training takes the feature order and
monotone constraints from here, the explanation text is formatted from the labels and the docs are rendered
from this table. There is no other list of features.

Definitions by source:
- ``entity``: an ``Attribute`` of the entities row (a column, a comparison, or the age at the as-of date);
- ``events``: an ``Aggregate`` (a measure over the events of some types in a window) or a ``Ratio`` of
  two aggregates, over the events known and unrepaired at the as-of date;
- ``lists``: ``OnList``, membership of a list in force at the as-of date, or ``ListEntries``, the entries
  of a list made by the as-of date, in force or ended;
- ``relations``: ``Related``, one hop over the links between entities (the optional ``relations``
  table): what the entities at the other end of a link have on their records at D.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from features.schema import ADVERSE_CODES, EVENT_TYPE_BY_CODE, INDUSTRIES


class Source(StrEnum):
    ENTITY = "entity"
    EVENTS = "events"
    LISTS = "lists"
    RELATIONS = "relations"


@dataclass(frozen=True)
class Attribute:
    """An entities column as it is (``equals`` None), compared with a value, or ``age`` in years at D; or,
    with ``as_of_month`` (and no column), the month of D itself: where the inspection year stands."""

    column: str | None
    equals: str | None = None
    age: bool = False
    as_of_month: bool = False

    def __post_init__(self) -> None:
        if self.as_of_month != (self.column is None):
            raise ValueError(f"an attribute reads an entities column, or (as_of_month) none; got {self}")

    def __str__(self) -> str:
        if self.as_of_month:
            return "month of D (1-12)"
        if self.age:
            return f"years from {self.column} to D"
        return self.column if self.equals is None else f"{self.column} == {self.equals!r}"


@dataclass(frozen=True)
class OnList:
    """True when the entity has an entry of ``list_name`` in force at D."""

    list_name: str

    def __str__(self) -> str:
        return f"in force on the {self.list_name} list at D"


@dataclass(frozen=True)
class ListEntries:
    """The number of entries of ``list_name`` the entity was given by D (entered by D), in force or ended:
    an entry that lapsed or was removed early still says the entity once qualified for it."""

    list_name: str

    def __str__(self) -> str:
        return f"entries on the {self.list_name} list entered by D, in force or ended"


class Side(StrEnum):
    """Which links a relationship feature follows, one hop from the entity."""

    TIES = "ties"  # control ties (CONTROL_RELATIONS) in force at D, read from either end
    CLIENTS = "clients"  # an agency's agency_client links known at D and in force within the window
    AGENCIES = "agencies"  # a client's agency_client links in force at D, read from the client's end


class RelatedMeasure(StrEnum):
    ENTITIES = "entities"  # distinct entities at the other end
    ON_LIST = "on_list"  # of them, those with an entry of ``list_name`` in force at D
    RECORDS = "records"  # their records of ``types`` that count at D, occurred in the window
    SHARE = "share"  # the share of them with at least one such record (0 when there are none)


@dataclass(frozen=True)
class Related:
    """A measure over the entities one link away (``side``), each counted once however many links join them.

    Records are the events that count at D (recorded by D, not repaired by D: ``EVENT_COUNTS``) and lists
    the entries in force at D (``LIST_IN_FORCE``), read from the same views as the entity's own, so the
    ledger's decisions apply to them too. ``through``: only records that occurred while the link was in
    force (filings an agency made for its client). ``months`` is the window of the records and, for
    ``Side.CLIENTS``, of the links (a client served at any time in the last ``months`` months).
    """

    side: Side
    measure: RelatedMeasure
    types: tuple[str, ...] = ()
    months: int | None = None
    list_name: str | None = None
    through: bool = False

    def __post_init__(self) -> None:
        if (self.measure is RelatedMeasure.ON_LIST) != (self.list_name is not None):
            raise ValueError(f"list_name must be given exactly for the on_list measure; got {self}")
        if (self.measure in (RelatedMeasure.RECORDS, RelatedMeasure.SHARE)) != bool(self.types):
            raise ValueError(f"types must be given exactly for the records and share measures; got {self}")
        if self.side is Side.CLIENTS and self.months is None:
            raise ValueError(f"an agency's clients are counted over a window of months; got {self}")
        clients_records = self.side is Side.CLIENTS and self.measure is not RelatedMeasure.ENTITIES
        if self.through != clients_records:
            raise ValueError(f"records through the link are counted exactly for an agency's clients; got {self}")

    def __str__(self) -> str:
        what = self.list_name or "|".join(self.types)
        window = "" if self.months is None else f"; last {self.months}m"
        return f"{self.measure}({self.side}; {what}{window}{'; through the link' if self.through else ''})"


class Measure(StrEnum):
    ROWS = "rows"  # number of records
    QUANTITY = "quantity"  # sum of quantity (applications filed, complaints received)
    AMOUNT = "amount"  # sum of amount in yuan
    KINDS = "kinds"  # number of distinct event types with at least one record
    YEARS_SINCE = "years_since"  # years since the latest occurrence, capped at 10 (10 when none)
    DECAYED = "decayed"  # records weighted by 2 ** -(age / half-life): recent ones count fully, old ones fade


YEARS_SINCE_CAP = 10.0


@dataclass(frozen=True)
class Aggregate:
    """A measure over the events of ``types`` that occurred in (D - months, D - skip_months], or with
    ``calendar_year`` in a calendar year: 0 is D's own year up to D, 1 the year before (inspection plans and
    their frequencies are set per year: an entity inspected this year is seldom drawn again before January).

    ``half_life_months`` is required by (and only by) ``Measure.DECAYED``. Engines read the window through
    ``features.pointintime.ago_bounds``.
    """

    types: tuple[str, ...]
    measure: Measure
    months: int | None = None  # None: ever
    skip_months: int = 0
    half_life_months: int | None = None
    calendar_year: int | None = None

    def __post_init__(self) -> None:
        if (self.measure is Measure.DECAYED) != (self.half_life_months is not None):
            raise ValueError(f"half_life_months must be given exactly for the decayed measure; got {self}")
        if self.calendar_year is not None and (self.months is not None or self.skip_months or self.calendar_year < 0):
            raise ValueError(f"a calendar-year window (0, 1, ...) takes no months; got {self}")

    def __str__(self) -> str:
        if self.calendar_year is not None:
            which = (
                "D's calendar year up to D" if self.calendar_year == 0 else f"calendar year of D - {self.calendar_year}"
            )
            return f"{self.measure}({'|'.join(self.types)}; occurred in {which})"
        window = "ever" if self.months is None else f"occurred in (D-{self.months}m, D-{self.skip_months}m]"
        decay = "" if self.half_life_months is None else f"; half-life {self.half_life_months}m"
        return f"{self.measure}({'|'.join(self.types)}; {window}{decay})"


@dataclass(frozen=True)
class Ratio:
    """``numerator / (denominator * scale + smoothing)``; missing when that denominator is 0."""

    numerator: Aggregate
    denominator: Aggregate
    scale: float = 1.0
    smoothing: float = 0.0

    def __str__(self) -> str:
        return f"{self.numerator} / ({self.denominator} * {self.scale:g} + {self.smoothing:g})"


@dataclass(frozen=True)
class Feature:
    """One model feature.

    ``direction`` is +1 when a larger value may only raise risk, -1 when it may only lower it and 0 when
    the model is free; it becomes LightGBM's monotone constraint. ``unit_zh`` ends the Chinese reason
    ("近12个月非正常专利申请 3次"). ``fill`` is the value when the entity has no matching record (None keeps
    it missing). ``seasonal``: its distribution follows the calendar - where the year stands at D - rather
    than the population, so drift monitoring shows it beside the others but never flags it (a month's scores
    would otherwise be compared with a reference of four quarter ends and flagged every January).
    """

    name: str
    source: Source
    spec: Attribute | Aggregate | Ratio | OnList | ListEntries | Related
    dtype: str  # "float", "int", "bool" or "category"
    label_zh: str
    label_en: str
    direction: int = 0
    window_months: int | None = None
    unit_zh: str = ""
    fill: float | None = 0.0
    seasonal: bool = False

    def describe(self, value: object) -> tuple[str, str]:
        """The reason sentence for this feature at ``value``, in Chinese and English."""
        shown = format_value(value, self.dtype)
        if self.dtype == "bool":
            yes = bool(value) if value is not None and not pd.isna(value) else False
            return f"{self.label_zh}：{'是' if yes else '否'}", f"{self.label_en}: {'yes' if yes else 'no'}"
        return f"{self.label_zh} {shown}{self.unit_zh}", f"{self.label_en}: {shown}"


def format_value(value: object, dtype: str) -> str:
    """A feature value as a reason shows it: whole numbers with separators, others to two decimals."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    if dtype == "int" or (isinstance(value, float) and float(value).is_integer() and dtype != "float"):
        return f"{int(value):,}"
    if isinstance(value, int | float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def _window_zh(months: int | None) -> str:
    return "历史累计" if months is None else f"近{months}个月"


def _window_en(months: int | None) -> str:
    return "ever" if months is None else f"in the last {months} months"


def _event_count(
    code: str, months: int | None, direction: int, *, measure: Measure = Measure.ROWS, unit_zh: str = "次"
) -> Feature:
    et = EVENT_TYPE_BY_CODE[code]
    suffix = "all" if months is None else f"{months}m"
    return Feature(
        name=f"{code}_{suffix}",
        source=Source.EVENTS,
        spec=Aggregate((code,), measure, months),
        dtype="int",
        label_zh=f"{_window_zh(months)}{et.label_zh}",
        label_en=f"{et.label_en} {_window_en(months)}",
        direction=direction,
        window_months=months,
        unit_zh=unit_zh,
    )


def _decayed(name: str, code: str, half_life_months: int, label_zh: str, label_en: str) -> Feature:
    """Records of one signal ``code``, each weighted by ``2 ** -(age / half-life)`` (the long memory of a
    recurring signal: recent records count fully, old ones fade)."""
    return Feature(
        name=name,
        source=Source.EVENTS,
        spec=Aggregate((code,), Measure.DECAYED, half_life_months=half_life_months),
        dtype="float",
        label_zh=f"{label_zh}(按{half_life_months}个月半衰期加权)",
        label_en=f"{label_en}, each weighted by a {half_life_months}-month half-life",
        direction=1,
        unit_zh="次",
    )


def _adverse_count(months: int | None) -> Feature:
    suffix = "all" if months is None else f"{months}m"
    return Feature(
        name=f"adverse_{suffix}",
        source=Source.EVENTS,
        spec=Aggregate(ADVERSE_CODES, Measure.ROWS, months),
        dtype="int",
        label_zh=f"{_window_zh(months)}未修复失信违法记录",
        label_en=f"unrepaired adverse records {_window_en(months)}",
        direction=1,
        window_months=months,
        unit_zh="条",
    )


_FILINGS = ("patent_filed", "trademark_filed")
_Q = Measure.QUANTITY

CATALOGUE: tuple[Feature, ...] = (
    # Basic attributes. Region is deliberately not a feature: one standard for every region; it is
    # used only to check that the model treats regions evenly.
    Feature(
        "age_years",
        Source.ENTITY,
        Attribute("registered_on", age=True),
        "float",
        "成立年限",
        "years since registration",
        unit_zh="年",
    ),
    Feature(
        "registered_capital",
        Source.ENTITY,
        Attribute("registered_capital"),
        "float",
        "注册资本(万元)",
        "registered capital (10,000 yuan)",
        fill=None,
    ),
    # Exposure, not conduct: a chain inspected at many premises has more chances of a finding in a year
    # (docs/real-record.md). Free direction; missing where the dataset does not report it.
    Feature(
        "locations",
        Source.ENTITY,
        Attribute("locations"),
        "float",
        "经营场所数",
        "business premises operated",
        unit_zh="处",
        fill=None,
    ),
    Feature(
        "is_agency", Source.ENTITY, Attribute("kind", equals="agency"), "bool", "知识产权代理/服务机构", "IP agency"
    ),
    Feature("online_seller", Source.ENTITY, Attribute("online_seller"), "bool", "网络经营者", "online seller"),
    Feature("industry", Source.ENTITY, Attribute("industry"), "category", "行业门类", "industry section", fill=None),
    # Supervision information: unrepaired adverse records, by window and by type.
    *(_adverse_count(m) for m in (3, 12, 24, 36, None)),
    *(_event_count(code, 36, 1) for code in ADVERSE_CODES),
    _event_count("abnormal_patent_filing", 12, 1),
    _event_count("malicious_trademark_filing", 12, 1),
    Feature(
        "adverse_types_36m",
        Source.EVENTS,
        Aggregate(ADVERSE_CODES, Measure.KINDS, 36),
        "int",
        "近36个月失信违法记录类型数",
        "kinds of adverse record in the last 36 months",
        direction=1,
        window_months=36,
        unit_zh="类",
    ),
    Feature(
        "years_since_adverse",
        Source.EVENTS,
        Aggregate(ADVERSE_CODES, Measure.YEARS_SINCE),
        "float",
        "距最近一次未修复失信违法记录",
        "years since the latest unrepaired adverse record (10 = none)",
        direction=-1,
        unit_zh="年",
        fill=YEARS_SINCE_CAP,
    ),
    # Long memory for sparse histories (a yearly inspection, a finding every few years): a decayed count
    # and the time since the latest finding carry information over years, where windowed counts are 0.
    Feature(
        "adverse_decayed",
        Source.EVENTS,
        Aggregate(ADVERSE_CODES, Measure.DECAYED, half_life_months=24),
        "float",
        "未修复失信违法记录(按24个月半衰期加权)",
        "unrepaired adverse records, each weighted by a 24-month half-life",
        direction=1,
        unit_zh="条",
    ),
    Feature(
        "years_since_failed_inspection",
        Source.EVENTS,
        Aggregate(("inspection_failed",), Measure.YEARS_SINCE),
        "float",
        "距最近一次“双随机”抽查发现问题",
        "years since the latest inspection with findings (10 = none)",
        direction=-1,
        unit_zh="年",
        fill=YEARS_SINCE_CAP,
    ),
    Feature(
        "inspection_fail_share_all",
        Source.EVENTS,
        # Smoothed by one, so that no inspection reads as 0 and each finding raises the share, each clean
        # inspection lowers it: (f + 1) / (n + 2) > f / (n + 1) and f / (n + 2) < f / (n + 1).
        Ratio(
            Aggregate(("inspection_failed",), Measure.ROWS),
            Aggregate(("inspection_failed", "inspection_passed"), Measure.ROWS),
            smoothing=1.0,
        ),
        "float",
        "历史抽查发现问题比例",
        "share of inspections with findings, whole history",
        direction=1,
    ),
    Feature(
        "fines_36m",
        Source.EVENTS,
        Aggregate(ADVERSE_CODES, Measure.AMOUNT, 36),
        "float",
        "近36个月罚没金额(元)",
        "fines in the last 36 months (yuan)",
        direction=1,
        window_months=36,
        unit_zh="元",
    ),
    # Social evaluation and dynamic signals.
    _event_count("complaint_received", 3, 1, measure=_Q),
    _event_count("complaint_received", 12, 1, measure=_Q),
    # Whole-history totals of each recurring signal beside the windows: a steady level of complaints,
    # takedowns or late reports over years says more about conduct than the last year alone, and a tree
    # splits on one total far more cheaply than it adds up windows (measured in benchmarks/bench_gain.py).
    _event_count("complaint_received", None, 1, measure=_Q),
    _decayed("complaints_decayed", "complaint_received", 12, "投诉举报", "complaint records"),
    _event_count("platform_takedown", 3, 1, measure=_Q),
    _event_count("platform_takedown", 12, 1, measure=_Q),
    _event_count("platform_takedown", None, 1, measure=_Q),
    _decayed(
        "takedowns_decayed", "platform_takedown", 36, "电商平台知识产权侵权下架", "e-commerce IP takedown records"
    ),
    _event_count("annual_report_late", 24, 1),
    _event_count("annual_report_late", None, 1),
    _decayed("late_reports_decayed", "annual_report_late", 24, "未按时报送年度报告", "late annual reports"),
    # Business activity: filings and grants (free direction: volume is not risk by itself).
    _event_count("patent_filed", 3, 0, measure=_Q, unit_zh="件"),
    _event_count("patent_filed", 12, 0, measure=_Q, unit_zh="件"),
    _event_count("patent_filed", 36, 0, measure=_Q, unit_zh="件"),
    _event_count("patent_filed", None, 0, measure=_Q, unit_zh="件"),
    _event_count("patent_granted", 36, 0, measure=_Q, unit_zh="件"),
    _event_count("patent_granted", None, 0, measure=_Q, unit_zh="件"),
    _event_count("trademark_filed", 3, 0, measure=_Q, unit_zh="件"),
    _event_count("trademark_filed", 12, 0, measure=_Q, unit_zh="件"),
    _event_count("trademark_filed", 36, 0, measure=_Q, unit_zh="件"),
    _event_count("trademark_filed", None, 0, measure=_Q, unit_zh="件"),
    Feature(
        "filing_burst_ratio",
        Source.EVENTS,
        # The last quarter's filings over the average of the eleven quarters before it.
        Ratio(Aggregate(_FILINGS, _Q, 3), Aggregate(_FILINGS, _Q, 36, skip_months=3), scale=1 / 11, smoothing=1.0),
        "float",
        "近3个月申请量与此前季度均值之比",
        "filings in the last 3 months over the prior quarterly average",
        window_months=36,
        unit_zh="倍",
    ),
    Feature(
        "grant_ratio_36m",
        Source.EVENTS,
        Ratio(Aggregate(("patent_granted",), _Q, 36), Aggregate(("patent_filed",), _Q, 36)),
        "float",
        "近36个月专利授权与申请之比",
        "patents granted per patent filed in the last 36 months",
        window_months=36,
        fill=None,
    ),
    # Positive information.
    _event_count("inspection_passed", 36, -1),
    _event_count("inspection_passed", None, -1),
    # A commitment signed in the last 12 months is still being checked (承诺核查): it is the exposure to a
    # breach found in the coming year, which is an adverse record, so it is free, not positive information
    # only; one signed in the last 3 or 6 months has its whole checking year ahead (measured in
    # benchmarks/bench_gain.py: docs/experiments.md).
    _event_count("commitment_signed", 3, 0),
    _event_count("commitment_signed", 6, 0),
    _event_count("commitment_signed", 12, 0),
    _event_count("commitment_signed", 36, 0),
    Feature(
        "honours_36m",
        Source.EVENTS,
        Aggregate(("honor_demonstration", "honor_advantage"), Measure.ROWS, 36),
        "int",
        "近36个月知识产权示范/优势企业认定",
        "IP demonstration or advantage honours in the last 36 months",
        direction=-1,
        window_months=36,
        unit_zh="次",
    ),
    _event_count("ipms_certified", 36, -1),
    # Passed inspections only: a failed one is an adverse record, and counting it here (a feature with a
    # free direction) could let one more violation lower a score.
    Feature(
        "years_since_clean_inspection",
        Source.EVENTS,
        Aggregate(("inspection_passed",), Measure.YEARS_SINCE),
        "float",
        "距最近一次“双随机”抽查未发现问题",
        "years since the latest random inspection without findings (10 = none)",
        unit_zh="年",
        fill=YEARS_SINCE_CAP,
    ),
    # The inspection year (抽查年度): plans and their frequencies are set per calendar year (A under once a year,
    # B once, C under twice), so this year's and last year's inspections say whether one is still to come
    # and whether the entity is on this year's plan after a finding. Passed ones free, as above.
    *(
        Feature(
            f"inspection_{kind}_{which}",
            Source.EVENTS,
            Aggregate((f"inspection_{kind}",), Measure.ROWS, calendar_year=offset),
            "int",
            f"{year_zh}“双随机”抽查{zh}",
            f"random inspections {en} {year_en}",
            direction=1 if kind == "failed" else 0,
            unit_zh="次",
            seasonal=offset == 0,
        )
        for which, offset, year_zh, year_en in (
            ("this_year", 0, "本年度", "this calendar year, up to D"),
            ("last_year", 1, "上一年度", "in the previous calendar year"),
        )
        for kind, zh, en in (("failed", "发现问题", "with findings"), ("passed", "未发现问题", "without findings"))
    ),
    # ... and where that year stands at D: at the end of March most of this year's inspections are still to
    # come, at the end of December none (the outcome window is then next year's plan). The same for every
    # entity at one date; it matters only together with the counts above.
    Feature(
        "as_of_month",
        Source.ENTITY,
        Attribute(None, as_of_month=True),
        "int",
        "评分基准日所在月份(抽查年度进度)",
        "month of the as-of date (how far the inspection year has run)",
        unit_zh="月",
        seasonal=True,
    ),
    # Lists in force at the as-of date.
    Feature("on_red_list", Source.LISTS, OnList("red"), "bool", "在诚信红名单", "on the red list", -1),
    # A red-list entry ends after its term or at the next adverse record; one that ran its term still says
    # the entity once qualified (a demonstration or advantage enterprise, a clean record for years), which a
    # lapsed honour does not take back (measured in benchmarks/bench_gain.py: docs/experiments.md).
    Feature(
        "red_list_entries",
        Source.LISTS,
        ListEntries("red"),
        "int",
        "累计列入诚信红名单",
        "red-list entries ever made (in force or ended)",
        -1,
        unit_zh="次",
    ),
    Feature(
        "on_untrustworthy_list",
        Source.LISTS,
        OnList("untrustworthy"),
        "bool",
        "在失信主体清单",
        "on the untrustworthy list",
        1,
    ),
    Feature(
        "on_serious_violation_list",
        Source.LISTS,
        OnList("serious_violation"),
        "bool",
        "在严重违法失信名单",
        "on the serious-violation list",
        1,
    ),
    Feature(
        "on_abnormal_operation_list",
        Source.LISTS,
        OnList("abnormal_operation"),
        "bool",
        "在经营异常名录",
        "on the abnormal-operation list",
        1,
    ),
)

_FINDINGS = ("abnormal_patent_filing", "malicious_trademark_filing")


def _related(name: str, spec: Related, dtype: str, label_zh: str, label_en: str, direction: int, unit_zh: str):
    return Feature(
        name, Source.RELATIONS, spec, dtype, label_zh, label_en, direction, window_months=spec.months, unit_zh=unit_zh
    )


# Relationships (关联关系), one hop over the links in force. The law ties the direction where it speaks:
# a listed or sanctioned related entity, an agency's clients' findings and a client's agency's sanctions
# may only raise risk; how many links an entity has is free (a group, a busy agency).
RELATIONSHIPS: tuple[Feature, ...] = (
    _related(
        "related_entities",
        Related(Side.TIES, RelatedMeasure.ENTITIES),
        "int",
        "关联主体(同一法定代表人、股东、同一地址)",
        "related entities (shared legal representative, shareholder, shared address)",
        0,
        "个",
    ),
    _related(
        "related_serious_violation",
        Related(Side.TIES, RelatedMeasure.ON_LIST, list_name="serious_violation"),
        "int",
        "关联主体在严重违法失信名单",
        "related entities on the serious-violation list",
        1,
        "个",
    ),
    _related(
        "related_untrustworthy",
        Related(Side.TIES, RelatedMeasure.ON_LIST, list_name="untrustworthy"),
        "int",
        "关联主体在失信主体清单",
        "related entities on the untrustworthy list",
        1,
        "个",
    ),
    *(
        _related(
            f"related_adverse_{months}m",
            Related(Side.TIES, RelatedMeasure.RECORDS, ADVERSE_CODES, months),
            "int",
            f"关联主体近{months}个月未修复失信违法记录",
            f"unrepaired adverse records of related entities in the last {months} months",
            1,
            "条",
        )
        for months in (12, 36)
    ),
    _related(
        "agency_clients_36m",
        Related(Side.CLIENTS, RelatedMeasure.ENTITIES, months=36),
        "int",
        "近36个月代理的委托人",
        "clients served in the last 36 months (agencies)",
        0,
        "个",
    ),
    _related(
        "agency_client_findings_36m",
        Related(Side.CLIENTS, RelatedMeasure.RECORDS, _FINDINGS, 36, through=True),
        "int",
        "近36个月委托人经本机构代理被认定的非正常专利申请、恶意商标注册申请",
        "abnormal patent and malicious trademark filings of clients through the agency, last 36 months",
        1,
        "条",
    ),
    _related(
        "agency_client_finding_share_36m",
        Related(Side.CLIENTS, RelatedMeasure.SHARE, _FINDINGS, 36, through=True),
        "float",
        "近36个月有此类认定的委托人比例",
        "share of the agency's clients with such findings, last 36 months",
        1,
        "",
    ),
    _related(
        "client_agency_adverse_36m",
        Related(Side.AGENCIES, RelatedMeasure.RECORDS, ADVERSE_CODES, 36),
        "int",
        "所委托代理机构近36个月未修复失信违法记录",
        "unrepaired adverse records of the client's agencies in the last 36 months",
        1,
        "条",
    ),
)
CATALOGUE = (*CATALOGUE, *RELATIONSHIPS)

FEATURES: dict[str, Feature] = {f.name: f for f in CATALOGUE}
# The entities columns the features read: the key and every attribute column, in catalogue order.
ENTITY_COLUMNS: tuple[str, ...] = (
    "entity_id",
    *dict.fromkeys(f.spec.column for f in CATALOGUE if isinstance(f.spec, Attribute) and f.spec.column),
)
FEATURE_NAMES: list[str] = [f.name for f in CATALOGUE]
SEASONAL: frozenset[str] = frozenset(f.name for f in CATALOGUE if f.seasonal)
CATEGORICAL: list[str] = [f.name for f in CATALOGUE if f.dtype == "category"]
CATEGORIES: dict[str, list[str]] = {"industry": list(INDUSTRIES)}


def monotone_constraints() -> list[int]:
    """LightGBM ``monotone_constraints`` in catalogue order."""
    return [f.direction for f in CATALOGUE]


def catalogue_frame() -> pd.DataFrame:
    """The catalogue as a table, for docs, MLflow artifacts and the notebook."""
    return pd.DataFrame(
        [
            {
                "name": f.name,
                "dtype": f.dtype,
                "window_months": f.window_months,
                "direction": f.direction,
                "label_zh": f.label_zh,
                "label_en": f.label_en,
                "source": str(f.source),
            }
            for f in CATALOGUE
        ]
    )


def catalogue_fingerprint() -> str:
    """A short hash of everything that defines the features; part of the feature code version."""
    text = "\n".join(f"{f.name}|{f.source}|{f.spec}|{f.dtype}|{f.direction}|{f.fill}" for f in CATALOGUE)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table (docs/features.md embeds it; a test keeps the two in step)."""
    arrow = {1: "↑ risk", -1: "↓ risk", 0: "free"}
    lines = [
        "| feature | type | window | direction | 中文 | English |",
        "|---|---|---|---|---|---|",
    ]
    for f in CATALOGUE:
        window = "—" if f.window_months is None else f"{f.window_months} m"
        if isinstance(f.spec, Aggregate) and f.spec.calendar_year is not None:
            window = "calendar year"
        lines.append(f"| `{f.name}` | {f.dtype} | {window} | {arrow[f.direction]} | {f.label_zh} | {f.label_en} |")
    return "\n".join(lines)
