"""The input contract: tables, columns, types and code lists of an enterprise-history dataset.

This module is the single source of the names in CONTRACT section 1. The loader, the validator, the
synthetic world, the feature builder and the service's request models all read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class ColumnType(StrEnum):
    """Logical column types of the contract, each with the DuckDB type it is cast to."""

    STR = "VARCHAR"
    DATE = "DATE"
    INT = "BIGINT"
    FLOAT = "DOUBLE"
    BOOL = "BOOLEAN"


@dataclass(frozen=True)
class Column:
    """One contract column."""

    name: str
    type: ColumnType
    nullable: bool = False
    description: str = ""


@dataclass(frozen=True)
class Table:
    """One contract table; ``key`` is the column that must be unique, if any; an ``optional`` table may be
    left out of a dataset (it then reads as empty)."""

    name: str
    columns: tuple[Column, ...]
    key: str | None = None
    optional: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")


# The earliest date any input may carry: no register of market entities reaches back further.
EARLIEST_DATE = date(1900, 1, 1)

# A unified social credit code (GB 32100-2015; ``features.uscc`` checks it) and a 6-digit division code.
ENTITY_ID_LENGTH = 18
REGION_PATTERN = r"[0-9]{6}"
KINDS: tuple[str, ...] = ("enterprise", "agency")
# GB/T 4754-2017 sections A-T.
INDUSTRIES: tuple[str, ...] = tuple("ABCDEFGHIJKLMNOPQRST")
LIST_NAMES: tuple[str, ...] = ("red", "untrustworthy", "serious_violation", "abnormal_operation")
NEGATIVE_LISTS: tuple[str, ...] = ("untrustworthy", "serious_violation", "abnormal_operation")
# The most business premises one entity may report (the largest retail chains run a few tens of thousands).
MAX_LOCATIONS = 1_000_000
# Upper bounds far above any real record, below where sums of tens of millions of records overflow or lose
# their meaning: an event's quantity, its amount in yuan, and registered capital in 10,000 yuan (10^9 万元 is
# 10 trillion yuan; the largest registered capital, China State Railway's, is under 2 trillion).
MAX_QUANTITY = 1_000_000_000
MAX_AMOUNT = 1_000_000_000_000
MAX_REGISTERED_CAPITAL = 1_000_000_000
# A serious-violation entry lapses this many years after entry even with no removal date (SAMR Order 44).
SERIOUS_VIOLATION_LAPSE_YEARS = 3


class EventClass(StrEnum):
    ACTIVITY = "activity"
    ADVERSE = "adverse"
    POSITIVE = "positive"
    SIGNAL = "signal"


@dataclass(frozen=True)
class EventType:
    code: str
    label_zh: str
    label_en: str
    event_class: EventClass


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("patent_filed", "专利申请", "patent applications filed", EventClass.ACTIVITY),
    EventType("patent_granted", "专利授权", "patents granted", EventClass.ACTIVITY),
    EventType("trademark_filed", "商标注册申请", "trademark applications filed", EventClass.ACTIVITY),
    EventType("abnormal_patent_filing", "非正常专利申请", "abnormal patent filings found", EventClass.ADVERSE),
    EventType(
        "malicious_trademark_filing",
        "恶意商标注册申请",
        "malicious trademark filings found",
        EventClass.ADVERSE,
    ),
    EventType(
        "infringement_penalty",
        "侵犯知识产权行政处罚",
        "administrative penalties for IP infringement",
        EventClass.ADVERSE,
    ),
    EventType(
        "counterfeit_patent_penalty",
        "假冒专利行政处罚",
        "penalties for passing off patents",
        EventClass.ADVERSE,
    ),
    EventType("infringement_judgment", "知识产权侵权判决", "IP infringement judgments", EventClass.ADVERSE),
    EventType("agency_misconduct", "代理机构违法违规行为处罚", "penalties for agency misconduct", EventClass.ADVERSE),
    EventType("false_materials", "提供虚假材料、隐瞒重要事实", "false materials or hidden facts", EventClass.ADVERSE),
    EventType(
        "commitment_breach",
        "信用承诺不实或未履行",
        "credit commitments untrue or not kept",
        EventClass.ADVERSE,
    ),
    EventType(
        "refusal_to_comply",
        "有履行能力但拒不履行、逃避执行",
        "refusals to comply while able",
        EventClass.ADVERSE,
    ),
    EventType("inspection_failed", "“双随机”抽查发现问题", "random inspections with findings", EventClass.ADVERSE),
    EventType(
        "inspection_passed",
        "“双随机”抽查未发现问题",
        "random inspections without findings",
        EventClass.POSITIVE,
    ),
    EventType("commitment_signed", "签署信用承诺书", "credit commitments signed", EventClass.POSITIVE),
    EventType(
        "honor_demonstration",
        "国家知识产权示范企业",
        "national IP demonstration honours",
        EventClass.POSITIVE,
    ),
    EventType(
        "honor_advantage",
        "国家/省级知识产权优势企业",
        "national/provincial IP advantage honours",
        EventClass.POSITIVE,
    ),
    EventType(
        "ipms_certified",
        "知识产权管理体系贯标认证",
        "IP management system certifications",
        EventClass.POSITIVE,
    ),
    EventType("complaint_received", "知识产权投诉举报", "IP complaints received", EventClass.SIGNAL),
    EventType("platform_takedown", "电商平台知识产权侵权下架", "e-commerce IP takedowns", EventClass.SIGNAL),
    EventType("annual_report_late", "未按时报送年度报告", "late annual reports", EventClass.SIGNAL),
)
EVENT_TYPE_BY_CODE: dict[str, EventType] = {e.code: e for e in EVENT_TYPES}
EVENT_CODES: tuple[str, ...] = tuple(e.code for e in EVENT_TYPES)
ADVERSE_CODES: tuple[str, ...] = tuple(e.code for e in EVENT_TYPES if e.event_class is EventClass.ADVERSE)
# The outcome of a "双随机" inspection and the event type it is recorded as.
INSPECTION_OUTCOMES: dict[str, str] = {"passed": "inspection_passed", "failed": "inspection_failed"}


ENTITIES = Table(
    "entities",
    (
        Column("entity_id", ColumnType.STR, description="18-character unified social credit code"),
        Column("name", ColumnType.STR, description="registered name"),
        Column("kind", ColumnType.STR, description="enterprise or agency"),
        Column("industry", ColumnType.STR, description="GB/T 4754 section letter A-T"),
        Column("region", ColumnType.STR, description="6-digit administrative division code"),
        Column("registered_on", ColumnType.DATE, description="date of establishment"),
        Column("registered_capital", ColumnType.FLOAT, nullable=True, description="in 10,000 yuan"),
        Column("online_seller", ColumnType.BOOL, description="sells goods or services online"),
        # An extension of CONTRACT section 1, optional like every nullable column: a dataset may leave it out.
        Column(
            "locations",
            ColumnType.INT,
            nullable=True,
            description="business premises (经营场所) the entity operates, its registered one included",
        ),
    ),
    key="entity_id",
)
EVENTS = Table(
    "events",
    (
        Column("event_id", ColumnType.STR),
        Column("entity_id", ColumnType.STR),
        Column("event_type", ColumnType.STR),
        Column("occurred_on", ColumnType.DATE),
        Column("recorded_on", ColumnType.DATE),
        Column("quantity", ColumnType.INT),
        Column("amount", ColumnType.FLOAT, nullable=True),
        Column("repaired_on", ColumnType.DATE, nullable=True),
    ),
    key="event_id",
)
LISTS = Table(
    "lists",
    (
        Column("entity_id", ColumnType.STR),
        Column("list", ColumnType.STR),
        Column("entered_on", ColumnType.DATE),
        Column("removed_on", ColumnType.DATE, nullable=True),
        Column("basis", ColumnType.STR, nullable=True),
    ),
)
# Not a contract column: the day the regulator's ledger withdrew a list entry (``withdraw_listing``: annulled
# on review, entered in error), from which it no longer counts even among the entries ever made. A delivery
# never sets it (every engine reads a delivery's as NULL, whatever its file holds); the ledger's overlay does
# (features/ledger.py), and Spark reads it from the overlay's folder only (serving.cli.ledger.spark_folder).
WITHDRAWN_ON = "withdrawn_on"
# Links between entities (CONTRACT section 1, optional): entity-entity edges only, no personal data.
# ``agency_client``: entity_id is the agency that filed for related_id; ``shareholder``: entity_id holds
# shares of related_id; the other two are symmetric (A shares a legal representative with B as B with A).
RELATION_TYPES: tuple[str, ...] = ("agency_client", "shared_legal_representative", "shareholder", "shared_address")
SYMMETRIC_RELATIONS: tuple[str, ...] = ("shared_legal_representative", "shared_address")
# The ties through which one actor may run several entities (关联关系), as against an agency serving a client.
CONTROL_RELATIONS: tuple[str, ...] = ("shared_legal_representative", "shareholder", "shared_address")
RELATION_LABELS: dict[str, tuple[str, str]] = {
    "agency_client": ("代理关系", "agency and client"),
    "shared_legal_representative": ("同一法定代表人", "shared legal representative"),
    "shareholder": ("股东关系", "shareholder"),
    "shared_address": ("同一注册地址", "shared address"),
}
RELATIONS = Table(
    "relations",
    (
        Column("entity_id", ColumnType.STR, description="must exist in entities"),
        Column("related_id", ColumnType.STR, description="must exist in entities; never entity_id"),
        Column("relation", ColumnType.STR, description=", ".join(RELATION_TYPES)),
        Column("from_on", ColumnType.DATE, description="in force from"),
        Column("to_on", ColumnType.DATE, nullable=True, description="ended on (empty: still in force)"),
        Column("recorded_on", ColumnType.DATE, description="when the authority recorded the link"),
    ),
    optional=True,
)
TABLES: tuple[Table, ...] = (ENTITIES, EVENTS, LISTS, RELATIONS)
TABLE_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
