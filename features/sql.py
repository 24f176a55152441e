"""The feature catalogue as SQL, rendered per dialect: the query that Spark runs, and DuckDB can.

``feature_query(as_of, dialect)`` renders one SELECT over the typed tables ``entities``, ``events`` and
``lists`` (and the small weights table ``_decay``, ``decay_table``) from ``features/catalogue.py`` and the
point-in-time conditions of ``features/pointintime.py``. Nothing in it is written by hand per feature: a
new catalogue entry is a new column in every dialect. ``DUCKDB`` and ``SPARK`` differ only in the few
functions that are spelled differently (``Dialect``); the golden files in ``tests/features/golden`` show
both renderings, and the tests run them against ``features.build.build_features`` on simulated worlds.

The query follows the numpy build step for step, so the two engines give the same bits, not only the
same values to a tolerance:

1. ``counted``: the events that count at D (``EVENT_COUNTS``), with ``ago`` = days from ``occurred_on``
   to D; windows compare ``ago`` with day counts computed here (``pointintime.window_days``), so no
   engine does calendar arithmetic of its own;
2. ``per_type``: one row per entity and event type, one column per (measure, window) the catalogue
   uses; a float sum (fines, decayed counts) adds its terms in ascending order from 0.0 (``ordered_sum``),
   as ``build.py`` does, so the order in which an engine meets the rows cannot change a bit;
3. ``per_entity``: the catalogue's aggregates over their types, float sums added type by type in the
   catalogue's order; ratios as ``numerator / (denominator * scale + smoothing)``;
4. the entity attributes and the list flags (``LIST_IN_FORCE``), joined to the entities registered by D.

The decayed weights ``2 ** -(ago / half-life)`` come from ``decay_table``, computed once in numpy for
every engine (``exp2`` and Java's ``pow`` differ in the last bit for one input in ten).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features import pointintime
from features.catalogue import (
    CATALOGUE,
    ENTITY_COLUMNS,
    YEARS_SINCE_CAP,
    Aggregate,
    Attribute,
    Feature,
    ListEntries,
    Measure,
    OnList,
    Ratio,
    Related,
    RelatedMeasure,
    Side,
    Source,
)
from features.pointintime import (
    EVENT_COUNTS,
    LIST_ENTERED,
    LIST_IN_FORCE,
    RELATION_IN_FORCE,
    RELATION_KNOWN,
    ago_bounds,
    sql_date,
    window_days,
)
from features.schema import CONTROL_RELATIONS, LISTS, WITHDRAWN_ON, ColumnType, Table

# The weights table covers events that occurred from this day on; an older one (none in any real register)
# falls back to the engine's own power function.
DECAY_EPOCH = date(1900, 1, 1)
DAYS_PER_YEAR = 365.25
DECAY_TABLE = "_decay"


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL engines: type names, day differences, ordered sums, safe casts."""

    name: str
    types: dict[ColumnType, str]
    days: Callable[[str, str], str]  # (start, end) -> whole days from start to end
    ordered_sum: Callable[[str, str], str]  # (value, condition) -> sum of value in ascending order, from 0.0
    try_cast: Callable[[str, str], str]  # (expression, type) -> the value, NULL when it does not convert

    def type(self, column_type: ColumnType) -> str:
        return self.types[column_type]


DUCKDB = Dialect(
    name="duckdb",
    types={t: t.value for t in ColumnType},
    days=lambda start, end: f"date_diff('day', {start}, {end})",
    ordered_sum=lambda value, condition: (
        f"list_reduce(list_sort(list({value}) FILTER (WHERE {condition})), lambda acc, v: acc + v, {double(0.0)})"
    ),
    try_cast=lambda expr, type_: f"TRY_CAST({expr} AS {type_})",
)
SPARK = Dialect(
    name="spark",
    types={
        ColumnType.STR: "STRING",
        ColumnType.DATE: "DATE",
        ColumnType.INT: "BIGINT",
        ColumnType.FLOAT: "DOUBLE",
        ColumnType.BOOL: "BOOLEAN",
    },
    days=lambda start, end: f"datediff({end}, {start})",
    ordered_sum=lambda value, condition: (
        f"aggregate(array_sort(collect_list({value}) FILTER (WHERE {condition})), {double(0.0)}, (acc, v) -> acc + v)"
    ),
    try_cast=lambda expr, type_: f"try_cast({expr} AS {type_})",
)
DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, SPARK)}


def double(value: float) -> str:
    """A DOUBLE literal in every dialect (a bare ``0.5`` is a DECIMAL in DuckDB and in Spark)."""
    return f"CAST('{float(value)!r}' AS DOUBLE)"


def quote(text: str) -> str:
    """A string literal."""
    return "'" + text.replace("'", "''") + "'"


def _in(column: str, values: tuple[str, ...]) -> str:
    if len(values) == 1:
        return f"{column} = {quote(values[0])}"
    return f"{column} IN ({', '.join(quote(v) for v in values)})"


# ---- typed tables --------------------------------------------------------------------------------------


TEXT_TRUE, TEXT_FALSE = ("true", "t", "yes", "是"), ("false", "f", "no", "否")  # the words a flag is written in


def text_bool(source: str, dialect: Dialect) -> str:
    """A flag written as a word, trimmed and lower-cased (``Yes``, ``是``: a Chinese export's 是/否), or as a
    number (`` 1 ``, ``1.0``: pandas' way of writing a flag column with gaps), as a boolean; validation
    admits the words of ``TEXT_TRUE`` and ``TEXT_FALSE`` and the numbers 0 and 1 only."""
    text = f"lower(trim({source}))"
    word = f"CASE WHEN {_in(text, TEXT_TRUE)} THEN TRUE WHEN {_in(text, TEXT_FALSE)} THEN FALSE END"
    number = dialect.try_cast(
        dialect.try_cast(f"trim({source})", dialect.type(ColumnType.FLOAT)), dialect.type(ColumnType.BOOL)
    )
    return f"coalesce({word}, {number})"


def typed_column(name: str, column_type: ColumnType, text: bool, dialect: Dialect, quoted: str | None = None) -> str:
    """The cast of one contract column to its type; ``text`` when the column was read as text (CSV).

    Text booleans are read by ``text_bool``; text whole numbers go through a double, so ``2.0`` (pandas'
    way of writing a whole float) is 2 in every engine (Spark's ANSI cast refuses it; validation bounds them
    far below where a double loses a digit).
    """
    source = quoted or name
    if column_type is ColumnType.STR:
        return f"CAST({source} AS {dialect.type(column_type)}) AS {name}"
    if column_type is ColumnType.BOOL and text:
        return f"{text_bool(source, dialect)} AS {name}"
    if column_type is ColumnType.INT and text:
        number = dialect.try_cast(f"trim({source})", dialect.type(ColumnType.FLOAT))
        return f"{dialect.try_cast(number, dialect.type(column_type))} AS {name}"
    return f"{dialect.try_cast(source, dialect.type(column_type))} AS {name}"


def typed_columns(table: Table, present: dict[str, bool], dialect: Dialect, quote_name=lambda n: n) -> list[str]:
    """The expressions that cast ``table``'s contract columns to their types, one per column.

    ``present`` maps each column that is there to whether it was read as text; a missing column reads as
    NULL (validation reports it). ``quote_name`` quotes a source column's name in the dialect. The lists
    end with ``withdrawn_on`` (``features.schema.WITHDRAWN_ON``), NULL unless ``present`` names it: only
    Spark reading the ledger's overlay does (``features.spark.load_tables``), since only the ledger
    withdraws an entry.
    """
    parts = []
    for column in table.columns:
        if column.name not in present:
            parts.append(f"CAST(NULL AS {dialect.type(column.type)}) AS {column.name}")
        else:
            parts.append(typed_column(column.name, column.type, present[column.name], dialect, quote_name(column.name)))
    if table.name == LISTS.name and WITHDRAWN_ON in present:
        parts.append(
            typed_column(WITHDRAWN_ON, ColumnType.DATE, present[WITHDRAWN_ON], dialect, quote_name(WITHDRAWN_ON))
        )
    elif table.name == LISTS.name:
        parts.append(f"CAST(NULL AS {dialect.type(ColumnType.DATE)}) AS {WITHDRAWN_ON}")
    return parts


def typed_select(table: Table, present: dict[str, bool], dialect: Dialect, quote_name=lambda n: n) -> str:
    """``typed_columns`` as one SELECT list."""
    return ", ".join(typed_columns(table, present, dialect, quote_name))


# ---- decayed weights -----------------------------------------------------------------------------------


def decay_weights(ago: np.ndarray, half_life_days: int) -> np.ndarray:
    """``2 ** -(ago / half_life_days)``: the weight of a record ``ago`` days old (numpy, for every engine)."""
    return np.exp2(-np.asarray(ago, dtype=np.float64) / half_life_days)


def weights_at(ago: np.ndarray, as_of: date, half_life_months: int) -> np.ndarray:
    """The weight of records ``ago`` days old at ``as_of``, read from the table the SQL joins
    (``decay_table``), so that the numpy build and the SQL engines use the very same numbers."""
    table = decay_weights(np.arange((as_of - DECAY_EPOCH).days + 1), window_days(as_of, half_life_months))
    ago = np.asarray(ago)
    inside = (ago >= 0) & (ago < len(table))
    return np.where(inside, table[np.where(inside, ago, 0)], decay_weights(ago, window_days(as_of, half_life_months)))


def _half_lives() -> tuple[int, ...]:
    months = {f.spec.half_life_months for f in CATALOGUE if isinstance(f.spec, Aggregate)}
    return tuple(sorted(m for m in months if m is not None))


def decay_table(as_of: date) -> pd.DataFrame:
    """The weights the query joins: one row per age in days from 0 to ``as_of - DECAY_EPOCH``, one column
    ``w_<N>m`` per half-life of N months in the catalogue."""
    ago = np.arange((as_of - DECAY_EPOCH).days + 1, dtype=np.int32)
    columns: dict[str, np.ndarray] = {"ago": ago}
    for months in _half_lives():
        columns[f"w_{months}m"] = decay_weights(ago, window_days(as_of, months))
    return pd.DataFrame(columns)


# ---- the query -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PerType:
    """One column of ``per_type``: a measure over one entity's events of one type in a window."""

    measure: Measure  # ROWS (also for KINDS), QUANTITY, AMOUNT, YEARS_SINCE or DECAYED
    months: int | None
    skip_months: int
    half_life_months: int | None
    calendar_year: int | None = None

    @classmethod
    def of(cls, agg: Aggregate) -> _PerType:
        measure = Measure.ROWS if agg.measure is Measure.KINDS else agg.measure
        return cls(measure, agg.months, agg.skip_months, agg.half_life_months, agg.calendar_year)

    @property
    def column(self) -> str:
        if self.calendar_year is not None:
            window = f"year{self.calendar_year}"
        else:
            window = "all" if self.months is None else f"{self.months}m"
        skip = f"_skip{self.skip_months}m" if self.skip_months else ""
        decay = f"_hl{self.half_life_months}m" if self.half_life_months else ""
        return f"{self.measure.value}_{window}{skip}{decay}"

    def sql(self, as_of: date, dialect: Dialect, types: tuple[str, ...]) -> str:
        """The aggregate over ``c`` (``weighed``); ``types`` are the event types whose rows any feature reads
        from this column: a float sum collects only theirs (a list per entity and type is not free)."""
        conditions = ["TRUE"]
        if self.measure in (Measure.AMOUNT, Measure.DECAYED):
            conditions.append(_in("c.event_type", types))
        upper, lower = ago_bounds(as_of, self.months, self.skip_months, self.calendar_year)
        if upper is not None:
            conditions.append(f"c.ago < {upper}")
        if lower:
            conditions.append(f"c.ago >= {lower}")
        where = " AND ".join(conditions[1:]) or "TRUE"
        if self.measure is Measure.ROWS:
            return f"count(*) FILTER (WHERE {where})"
        if self.measure is Measure.QUANTITY:
            return f"CAST(sum(c.quantity) FILTER (WHERE {where}) AS BIGINT)"
        if self.measure is Measure.YEARS_SINCE:
            return f"min(c.ago) FILTER (WHERE {where})"
        if self.measure is Measure.AMOUNT:
            return dialect.ordered_sum("c.amount", where)
        return dialect.ordered_sum(f"c.w_{self.half_life_months}m", where)


def _aggregates() -> list[Aggregate]:
    found: list[Aggregate] = []
    for f in CATALOGUE:
        if isinstance(f.spec, Aggregate):
            found.append(f.spec)
        elif isinstance(f.spec, Ratio):
            found += [f.spec.numerator, f.spec.denominator]
    return found


def _per_type_columns() -> dict[_PerType, tuple[str, ...]]:
    """Each ``per_type`` column with the event types the aggregates that read it cover."""
    columns: dict[_PerType, dict[str, None]] = {}
    for agg in _aggregates():
        columns.setdefault(_PerType.of(agg), {}).update(dict.fromkeys(agg.types))
    return {column: tuple(types) for column, types in columns.items()}


def _event_types() -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for a in _aggregates() for t in a.types))


def _of_type(code: str) -> str:
    return f"pt.event_type = {quote(code)}"


def _entity_aggregate(agg: Aggregate) -> str:
    """The per-entity value of ``agg`` from the ``per_type`` rows (``pt``), NULL when the entity has none."""
    column = f"pt.{_PerType.of(agg).column}"
    if agg.measure in (Measure.ROWS, Measure.QUANTITY):
        return f"CAST(sum({column}) FILTER (WHERE {_in('pt.event_type', agg.types)}) AS BIGINT)"
    if agg.measure is Measure.KINDS:
        return f"count(*) FILTER (WHERE {_in('pt.event_type', agg.types)} AND {column} > 0)"
    if agg.measure is Measure.YEARS_SINCE:
        return f"min({column}) FILTER (WHERE {_in('pt.event_type', agg.types)})"
    # A float sum: per type (one row per entity and type), then type by type in the catalogue's order,
    # as build.py adds its per-type arrays.
    per_type = [f"coalesce(max({column}) FILTER (WHERE {_of_type(t)}), {double(0.0)})" for t in agg.types]
    return "(" + " + ".join(per_type) + ")"


class _Aggregates:
    """The per-entity aggregates the features need, each rendered once as a column ``a<i>``."""

    def __init__(self) -> None:
        self.columns: dict[Aggregate, str] = {}

    def name(self, agg: Aggregate) -> str:
        return self.columns.setdefault(agg, f"a{len(self.columns)}")

    def value(self, agg: Aggregate) -> str:
        """``agg`` for a registered entity (``ea`` is its per-entity row): no record counts as none."""
        column = f"ea.{self.name(agg)}"
        if agg.measure is Measure.YEARS_SINCE:
            cap = double(YEARS_SINCE_CAP)
            return f"CASE WHEN {column} IS NULL THEN {cap} ELSE least({cap}, {_as_double(column)} / {_year()}) END"
        if agg.measure in (Measure.AMOUNT, Measure.DECAYED):
            return f"coalesce({column}, {double(0.0)})"
        return f"coalesce({column}, 0)"

    def feature(self, spec: Aggregate | Ratio) -> str:
        if isinstance(spec, Aggregate):
            return self.value(spec)
        denominator = f"{_as_double(self.value(spec.denominator))} * {double(spec.scale)} + {double(spec.smoothing)}"
        return f"CASE WHEN {denominator} > 0 THEN {_as_double(self.value(spec.numerator))} / ({denominator}) END"


def _as_double(expr: str) -> str:
    return f"CAST({expr} AS DOUBLE)"


def _year() -> str:
    return double(DAYS_PER_YEAR)


def _attribute(spec: Attribute, as_of: date, dialect: Dialect) -> str:
    if spec.as_of_month:
        return f"CAST({as_of.month} AS BIGINT)"
    column = f"r.{spec.column}"
    if spec.age:
        return f"{_as_double(dialect.days(column, sql_date(as_of)))} / {_year()}"
    if spec.equals is not None:
        return f"coalesce({column} = {quote(spec.equals)}, FALSE)"
    return column


def _filled(f: Feature, expr: str) -> str:
    if f.fill is None or not isinstance(f.spec, Ratio):  # only a ratio can be missing (a zero denominator)
        return expr
    return f"coalesce({expr}, {double(f.fill)})"


def _weighed(as_of: date) -> str:
    """``counted`` with one weight column per half-life, from ``decay_table`` (an event older than the
    table, before ``DECAY_EPOCH``, gets the engine's own power of two)."""
    half_lives = _half_lives()
    if not half_lives:
        return "SELECT c.* FROM counted c"
    weights = []
    for months in half_lives:
        power = f"power({double(2.0)}, -({_as_double('c.ago')} / {window_days(as_of, months)}))"
        weights.append(f"coalesce(d.w_{months}m, {power}) AS w_{months}m")
    return f"SELECT c.*, {', '.join(weights)}\n    FROM counted c LEFT JOIN {DECAY_TABLE} d ON d.ago = c.ago"


# ---- relationships: one hop over the links ----------------------------------------------------------


def related_features() -> list[Feature]:
    """The catalogue's relationship features (``Source.RELATIONS``), in catalogue order."""
    return [f for f in CATALOGUE if f.source is Source.RELATIONS]


class _RelatedColumns:
    """The columns the relationship features read, each rendered once: per related entity, its records
    of some types in a window (``n<i>``) and its list flags (``l<i>``); per agency link, the client's
    records through the link (``t<i>``)."""

    def __init__(self, specs: list[Related]) -> None:
        self.records: dict[tuple[tuple[str, ...], int | None], str] = {}
        self.lists: dict[str, str] = {}
        self.through: dict[tuple[tuple[str, ...], int | None], str] = {}
        for spec in specs:
            if spec.measure is RelatedMeasure.ON_LIST:
                self.lists.setdefault(spec.list_name, f"l{len(self.lists)}")
            elif spec.through:
                self.through.setdefault((spec.types, spec.months), f"t{len(self.through)}")
            elif spec.types:
                self.records.setdefault((spec.types, spec.months), f"n{len(self.records)}")
        windows = {spec.months for spec in specs if spec.side is Side.CLIENTS}
        if len(windows) > 1:
            raise ValueError(f"an agency's clients are counted over one window; the catalogue has {sorted(windows)}")
        self.client_window = windows.pop() if windows else None
        keys = [*self.records, *self.through]
        self.types = tuple(dict.fromkeys(t for types, _ in keys for t in types))
        months = [m for _, m in keys]
        self.longest = None if None in months or not months else max(months)


def _within(months: int | None, as_of: date, ago: str) -> str:
    return "TRUE" if months is None else f"{ago} < {window_days(as_of, months)}"


def _neighbour_values(side: Side, columns: _RelatedColumns) -> str:
    """Per entity, over the entities in ``<side>_pairs``: how many, how many on each list, their records."""
    parts = ["count(*) AS entities"]
    parts += [f"CAST(sum(coalesce(rl.{c}, 0)) AS BIGINT) AS {c}" for c in columns.lists.values()]
    for c in columns.records.values():
        parts.append(f"CAST(sum(coalesce(rr.{c}, 0)) AS BIGINT) AS {c}")
        parts.append(f"count(*) FILTER (WHERE rr.{c} > 0) AS with_{c}")
    return f"""SELECT p.entity_id, {", ".join(parts)}
    FROM rel_{side}_pairs p
    LEFT JOIN rel_lists rl ON rl.entity_id = p.related_id
    LEFT JOIN rel_records rr ON rr.entity_id = p.related_id
    GROUP BY p.entity_id"""


def _share(with_: str, of: str) -> str:
    return f"CASE WHEN {of} > 0 THEN {_as_double(with_)} / {_as_double(of)} ELSE {double(0.0)} END"


def _related_value(spec: Related, columns: _RelatedColumns) -> str:
    """A relationship feature from its side's values (``v_<side>``)."""
    v = f"v_{spec.side}"
    if spec.measure is RelatedMeasure.ENTITIES:
        return f"{v}.entities"
    if spec.measure is RelatedMeasure.ON_LIST:
        return f"{v}.{columns.lists[spec.list_name]}"
    if spec.through:
        c = columns.through[(spec.types, spec.months)]
        return f"{v}.{c}" if spec.measure is RelatedMeasure.RECORDS else _share(f"{v}.with_{c}", f"{v}.entities")
    c = columns.records[(spec.types, spec.months)]
    return f"{v}.{c}" if spec.measure is RelatedMeasure.RECORDS else _share(f"{v}.with_{c}", f"{v}.entities")


def relation_steps(as_of: date | str, dialect: Dialect) -> list[tuple[str, str]]:
    """The relationship features as named SELECT steps, each reading the typed tables ``relations``,
    ``events``, ``lists`` or earlier steps; the last, ``rel_related``, has one row per entity with a link
    and one column per relationship feature of the catalogue (NULL-free). One hop: the entity's links,
    and the records of the entities at their other ends. Spark runs them as common table expressions of
    the feature query (``relation_ctes``); DuckDB one at a time as temporary tables (``build.py``), so
    its memory is that of one step however many there are.

    - ``rel_links``: the links known at D (``RELATION_KNOWN``), ``in_force`` when also not ended by D;
    - ``rel_ties_pairs``: the control ties in force, from either end, each related entity once;
      ``rel_agencies_pairs``: a client's agencies in force; ``rel_served``: an agency's links in force
      within the client window (ended, if at all, less than that window before D);
    - ``rel_records`` / ``rel_lists``: the records that count at D (``EVENT_COUNTS``) and the list entries
      in force (``LIST_IN_FORCE``) of the entities at the other ends (``rel_touched``), nobody else's;
    - ``rel_clients_values``: per agency, its clients, their findings through its links and the share of
      clients with any.
    """
    as_of = pointintime.as_date(as_of)
    day = sql_date(as_of)
    features = related_features()
    columns = _RelatedColumns([f.spec for f in features])
    control = _in("x.relation", CONTROL_RELATIONS)
    record_columns = ", ".join(
        f"count(*) FILTER (WHERE {_in('re.event_type', types)} AND {_within(months, as_of, 're.ago')}) AS {c}"
        for (types, months), c in columns.records.items()
    )
    list_columns = ", ".join(
        f"max(CASE WHEN l.list = {quote(name)} THEN 1 ELSE 0 END) AS {c}" for name, c in columns.lists.items()
    )
    through_columns = ", ".join(
        f"count(re.entity_id) FILTER (WHERE {_in('re.event_type', types)} AND {_within(months, as_of, 're.ago')}) "
        f"AS {c}"
        for (types, months), c in columns.through.items()
    )
    # A client may have had several links with the agency (never overlapping): counted once.
    client_parts = ["count(DISTINCT tl.client_id) AS entities"]
    for c in columns.through.values():
        client_parts += [
            f"CAST(sum(tl.{c}) AS BIGINT) AS {c}",
            f"count(DISTINCT CASE WHEN tl.{c} > 0 THEN tl.client_id END) AS with_{c}",
        ]
    window = columns.client_window
    ended = "TRUE" if window is None else f"{dialect.days('x.to_on', day)} < {window_days(as_of, window)}"
    branches = []
    for side in (Side.TIES, Side.AGENCIES, Side.CLIENTS):
        values = [
            f"{_related_value(f.spec, columns) if f.spec.side is side else _null(f)} AS {f.name}" for f in features
        ]
        branches.append(f"SELECT v_{side}.entity_id, {', '.join(values)} FROM rel_{side}_values v_{side}")
    union = "\n        UNION ALL ".join(branches)
    selected = ",\n           ".join(f"coalesce(max(k.{f.name}), {_zero(f)}) AS {f.name}" for f in features)
    types = _in("ev.event_type", columns.types) if columns.types else "FALSE"
    steps = {
        "links": f"""SELECT x.entity_id, x.related_id, x.relation, x.from_on, x.to_on,
           {pointintime.sql(RELATION_IN_FORCE, as_of, "x")} AS in_force
    FROM relations x
    WHERE {pointintime.sql(RELATION_KNOWN, as_of, "x")} AND x.entity_id <> x.related_id""",
        "ties_pairs": f"""SELECT DISTINCT t.entity_id, t.related_id FROM (
        SELECT x.entity_id, x.related_id FROM rel_links x WHERE x.in_force AND {control}
        UNION ALL
        SELECT x.related_id AS entity_id, x.entity_id AS related_id FROM rel_links x WHERE x.in_force AND {control}
    ) t""",
        "agencies_pairs": """SELECT x.related_id AS entity_id, x.entity_id AS related_id
    FROM rel_links x WHERE x.in_force AND x.relation = 'agency_client'""",
        "served": f"""SELECT x.entity_id AS agency_id, x.related_id AS client_id, x.from_on, x.to_on
    FROM rel_links x WHERE x.relation = 'agency_client' AND (x.to_on IS NULL OR {ended})""",
        "touched": """SELECT DISTINCT t.id FROM (
        SELECT related_id AS id FROM rel_ties_pairs
        UNION ALL SELECT related_id AS id FROM rel_agencies_pairs
        UNION ALL SELECT client_id AS id FROM rel_served
    ) t""",
        "events": f"""SELECT ev.entity_id, ev.event_type, ev.occurred_on, {dialect.days("ev.occurred_on", day)} AS ago
    FROM events ev JOIN rel_touched t ON t.id = ev.entity_id
    WHERE {pointintime.sql(EVENT_COUNTS, as_of, "ev")} AND {types}
      AND {_within(columns.longest, as_of, dialect.days("ev.occurred_on", day))}""",
        "records": f"""SELECT re.entity_id{", " + record_columns if record_columns else ""}
    FROM rel_events re
    GROUP BY re.entity_id""",
        "lists": f"""SELECT l.entity_id{", " + list_columns if list_columns else ""}
    FROM lists l JOIN rel_touched t ON t.id = l.entity_id
    WHERE {pointintime.sql(LIST_IN_FORCE, as_of, "l")}
    GROUP BY l.entity_id""",
        "ties_values": _neighbour_values(Side.TIES, columns),
        "agencies_values": _neighbour_values(Side.AGENCIES, columns),
        "through_links": f"""SELECT s.agency_id, s.client_id{", " + through_columns if through_columns else ""}
    FROM rel_served s
    LEFT JOIN rel_events re ON re.entity_id = s.client_id AND re.occurred_on >= s.from_on
         AND (s.to_on IS NULL OR re.occurred_on < s.to_on)
    GROUP BY s.agency_id, s.client_id, s.from_on""",
        "clients_values": f"""SELECT tl.agency_id AS entity_id, {", ".join(client_parts)}
    FROM rel_through_links tl
    GROUP BY tl.agency_id""",
        "related": f"""SELECT k.entity_id,
           {selected}
    FROM (
        {union}
    ) k
    GROUP BY k.entity_id""",
    }
    return [(f"rel_{name}", body) for name, body in steps.items()]


def relation_ctes(as_of: date | str, dialect: Dialect) -> str:
    """``relation_steps`` as common table expressions, the last one ``rel_related`` (for ``feature_query``)."""
    return ", ".join(f"{name} AS (\n    {body}\n)" for name, body in relation_steps(as_of, dialect))


def _zero(f: Feature) -> str:
    """The feature's value when the entity has nothing behind it, in its SQL type."""
    return {"float": double(0.0), "bool": "FALSE"}.get(f.dtype, "0")


def _null(f: Feature) -> str:
    """A missing value of the feature's SQL type (each side's branch fills only its own features)."""
    return f"CAST(NULL AS {'DOUBLE' if f.dtype == 'float' else 'BIGINT'})"


def relation_query(as_of: date | str, dialect: Dialect) -> str:
    """The relationship features at ``as_of`` alone: ``entity_id`` and one column per relationship feature,
    one row per entity with a link known at D (every other entity has zeros). The same text
    ``feature_query`` embeds, so the numpy build (which runs this on DuckDB) and Spark agree."""
    return f"WITH {relation_ctes(as_of, dialect)}\nSELECT * FROM rel_related ORDER BY entity_id\n"


def _list_measure(spec: OnList | ListEntries) -> str:
    """A list feature over the entity's entries entered by D: a flag of one in force, or the count."""
    name = quote(spec.list_name)
    if isinstance(spec, ListEntries):
        return f"sum(CASE WHEN l.list = {name} THEN 1 ELSE 0 END)"
    return f"bool_or(l.list = {name} AND l.in_force)"


def feature_query(as_of: date | str, dialect: Dialect, *, ordered: bool = True) -> str:
    """The feature table at ``as_of`` as one SQL query in ``dialect``.

    It reads the typed tables ``entities``, ``events``, ``lists`` and ``_decay`` (``decay_table(as_of)``)
    and returns ``entity_id``, ``as_of`` and every catalogue feature in catalogue order, one row per
    entity registered by ``as_of``, ordered by ``entity_id`` (unless not ``ordered``) — the columns and
    values of ``features.build.build_features`` before ``conform`` gives them the catalogue's dtypes.
    """
    as_of = pointintime.as_date(as_of)
    day = sql_date(as_of)
    per_type = _per_type_columns()
    aggregates = _Aggregates()
    selected = ["r.entity_id AS entity_id", f"{day} AS as_of"]
    list_flags: list[str] = []
    for f in CATALOGUE:
        if f.source is Source.ENTITY:
            expr = _attribute(f.spec, as_of, dialect)
        elif f.source is Source.LISTS:
            list_flags.append(f"{_list_measure(f.spec)} AS {f.name}")
            expr = f"coalesce(el.{f.name}, {_zero(f)})"
        elif f.source is Source.RELATIONS:
            expr = f"coalesce(rv.{f.name}, {_zero(f)})"
        else:
            expr = _filled(f, aggregates.feature(f.spec))
        selected.append(f"{expr} AS {f.name}")
    weighed = _weighed(as_of)
    per_type_sql = ",\n           ".join(f"{p.sql(as_of, dialect, t)} AS {p.column}" for p, t in per_type.items())
    entity_sql = ",\n           ".join(f"{_entity_aggregate(a)} AS {n}" for a, n in aggregates.columns.items())
    lists_sql = ",\n           ".join(list_flags)
    select_sql = ",\n       ".join(selected)
    return f"""WITH registered AS (
    SELECT {", ".join("e." + c for c in ENTITY_COLUMNS)}
    FROM entities e
    WHERE e.registered_on <= {day}
), counted AS (
    SELECT ev.entity_id, ev.event_type, ev.quantity, coalesce(ev.amount, {double(0.0)}) AS amount,
           {dialect.days("ev.occurred_on", day)} AS ago
    FROM events ev
    WHERE {pointintime.sql(EVENT_COUNTS, as_of, "ev")} AND {_in("ev.event_type", _event_types())}
), weighed AS (
    {weighed}
), per_type AS (
    SELECT c.entity_id, c.event_type,
           {per_type_sql}
    FROM weighed c
    GROUP BY c.entity_id, c.event_type
), per_entity AS (
    SELECT pt.entity_id,
           {entity_sql}
    FROM per_type pt
    GROUP BY pt.entity_id
), entity_lists AS (
    SELECT l.entity_id,
           {lists_sql}
    FROM (
        SELECT l.entity_id, l.list, {pointintime.sql(LIST_IN_FORCE, as_of, "l")} AS in_force
        FROM lists l
        WHERE {pointintime.sql(LIST_ENTERED, as_of, "l")}
    ) l
    GROUP BY l.entity_id
), {relation_ctes(as_of, dialect)}
SELECT {select_sql}
FROM registered r
LEFT JOIN per_entity ea ON ea.entity_id = r.entity_id
LEFT JOIN entity_lists el ON el.entity_id = r.entity_id
LEFT JOIN rel_related rv ON rv.entity_id = r.entity_id
{"ORDER BY r.entity_id" if ordered else ""}
"""
