WITH registered AS (
    SELECT e.entity_id, e.registered_on, e.registered_capital, e.locations, e.kind, e.online_seller, e.industry
    FROM entities e
    WHERE e.registered_on <= DATE '2025-12-31'
), counted AS (
    SELECT ev.entity_id, ev.event_type, ev.quantity, coalesce(ev.amount, CAST('0.0' AS DOUBLE)) AS amount,
           date_diff('day', ev.occurred_on, DATE '2025-12-31') AS ago
    FROM events ev
    WHERE ev.recorded_on <= DATE '2025-12-31' AND (ev.repaired_on IS NULL OR ev.repaired_on > DATE '2025-12-31') AND ev.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed', 'inspection_passed', 'complaint_received', 'platform_takedown', 'annual_report_late', 'patent_filed', 'patent_granted', 'trademark_filed', 'commitment_signed', 'honor_demonstration', 'honor_advantage', 'ipms_certified')
), weighed AS (
    SELECT c.*, coalesce(d.w_12m, power(CAST('2.0' AS DOUBLE), -(CAST(c.ago AS DOUBLE) / 365))) AS w_12m, coalesce(d.w_24m, power(CAST('2.0' AS DOUBLE), -(CAST(c.ago AS DOUBLE) / 731))) AS w_24m, coalesce(d.w_36m, power(CAST('2.0' AS DOUBLE), -(CAST(c.ago AS DOUBLE) / 1096))) AS w_36m
    FROM counted c LEFT JOIN _decay d ON d.ago = c.ago
), per_type AS (
    SELECT c.entity_id, c.event_type,
           count(*) FILTER (WHERE c.ago < 92) AS rows_3m,
           count(*) FILTER (WHERE c.ago < 365) AS rows_12m,
           count(*) FILTER (WHERE c.ago < 731) AS rows_24m,
           count(*) FILTER (WHERE c.ago < 1096) AS rows_36m,
           count(*) FILTER (WHERE TRUE) AS rows_all,
           min(c.ago) FILTER (WHERE TRUE) AS years_since_all,
           list_reduce(list_sort(list(c.w_24m) FILTER (WHERE c.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed', 'annual_report_late'))), lambda acc, v: acc + v, CAST('0.0' AS DOUBLE)) AS decayed_all_hl24m,
           list_reduce(list_sort(list(c.amount) FILTER (WHERE c.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed') AND c.ago < 1096)), lambda acc, v: acc + v, CAST('0.0' AS DOUBLE)) AS amount_36m,
           CAST(sum(c.quantity) FILTER (WHERE c.ago < 92) AS BIGINT) AS quantity_3m,
           CAST(sum(c.quantity) FILTER (WHERE c.ago < 365) AS BIGINT) AS quantity_12m,
           CAST(sum(c.quantity) FILTER (WHERE TRUE) AS BIGINT) AS quantity_all,
           list_reduce(list_sort(list(c.w_12m) FILTER (WHERE c.event_type = 'complaint_received')), lambda acc, v: acc + v, CAST('0.0' AS DOUBLE)) AS decayed_all_hl12m,
           list_reduce(list_sort(list(c.w_36m) FILTER (WHERE c.event_type = 'platform_takedown')), lambda acc, v: acc + v, CAST('0.0' AS DOUBLE)) AS decayed_all_hl36m,
           CAST(sum(c.quantity) FILTER (WHERE c.ago < 1096) AS BIGINT) AS quantity_36m,
           CAST(sum(c.quantity) FILTER (WHERE c.ago < 1096 AND c.ago >= 92) AS BIGINT) AS quantity_36m_skip3m,
           count(*) FILTER (WHERE c.ago < 184) AS rows_6m,
           count(*) FILTER (WHERE c.ago < 365) AS rows_year0,
           count(*) FILTER (WHERE c.ago < 731 AND c.ago >= 365) AS rows_year1
    FROM weighed c
    GROUP BY c.entity_id, c.event_type
), per_entity AS (
    SELECT pt.entity_id,
           CAST(sum(pt.rows_3m) FILTER (WHERE pt.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed')) AS BIGINT) AS a0,
           CAST(sum(pt.rows_12m) FILTER (WHERE pt.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed')) AS BIGINT) AS a1,
           CAST(sum(pt.rows_24m) FILTER (WHERE pt.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed')) AS BIGINT) AS a2,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed')) AS BIGINT) AS a3,
           CAST(sum(pt.rows_all) FILTER (WHERE pt.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed')) AS BIGINT) AS a4,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'abnormal_patent_filing') AS BIGINT) AS a5,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'malicious_trademark_filing') AS BIGINT) AS a6,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'infringement_penalty') AS BIGINT) AS a7,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'counterfeit_patent_penalty') AS BIGINT) AS a8,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'infringement_judgment') AS BIGINT) AS a9,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'agency_misconduct') AS BIGINT) AS a10,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'false_materials') AS BIGINT) AS a11,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'commitment_breach') AS BIGINT) AS a12,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'refusal_to_comply') AS BIGINT) AS a13,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'inspection_failed') AS BIGINT) AS a14,
           CAST(sum(pt.rows_12m) FILTER (WHERE pt.event_type = 'abnormal_patent_filing') AS BIGINT) AS a15,
           CAST(sum(pt.rows_12m) FILTER (WHERE pt.event_type = 'malicious_trademark_filing') AS BIGINT) AS a16,
           count(*) FILTER (WHERE pt.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed') AND pt.rows_36m > 0) AS a17,
           min(pt.years_since_all) FILTER (WHERE pt.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed')) AS a18,
           (coalesce(max(pt.decayed_all_hl24m) FILTER (WHERE pt.event_type = 'abnormal_patent_filing'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.decayed_all_hl24m) FILTER (WHERE pt.event_type = 'malicious_trademark_filing'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.decayed_all_hl24m) FILTER (WHERE pt.event_type = 'infringement_penalty'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.decayed_all_hl24m) FILTER (WHERE pt.event_type = 'counterfeit_patent_penalty'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.decayed_all_hl24m) FILTER (WHERE pt.event_type = 'infringement_judgment'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.decayed_all_hl24m) FILTER (WHERE pt.event_type = 'agency_misconduct'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.decayed_all_hl24m) FILTER (WHERE pt.event_type = 'false_materials'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.decayed_all_hl24m) FILTER (WHERE pt.event_type = 'commitment_breach'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.decayed_all_hl24m) FILTER (WHERE pt.event_type = 'refusal_to_comply'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.decayed_all_hl24m) FILTER (WHERE pt.event_type = 'inspection_failed'), CAST('0.0' AS DOUBLE))) AS a19,
           min(pt.years_since_all) FILTER (WHERE pt.event_type = 'inspection_failed') AS a20,
           CAST(sum(pt.rows_all) FILTER (WHERE pt.event_type IN ('inspection_failed', 'inspection_passed')) AS BIGINT) AS a21,
           CAST(sum(pt.rows_all) FILTER (WHERE pt.event_type = 'inspection_failed') AS BIGINT) AS a22,
           (coalesce(max(pt.amount_36m) FILTER (WHERE pt.event_type = 'abnormal_patent_filing'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.amount_36m) FILTER (WHERE pt.event_type = 'malicious_trademark_filing'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.amount_36m) FILTER (WHERE pt.event_type = 'infringement_penalty'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.amount_36m) FILTER (WHERE pt.event_type = 'counterfeit_patent_penalty'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.amount_36m) FILTER (WHERE pt.event_type = 'infringement_judgment'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.amount_36m) FILTER (WHERE pt.event_type = 'agency_misconduct'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.amount_36m) FILTER (WHERE pt.event_type = 'false_materials'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.amount_36m) FILTER (WHERE pt.event_type = 'commitment_breach'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.amount_36m) FILTER (WHERE pt.event_type = 'refusal_to_comply'), CAST('0.0' AS DOUBLE)) + coalesce(max(pt.amount_36m) FILTER (WHERE pt.event_type = 'inspection_failed'), CAST('0.0' AS DOUBLE))) AS a23,
           CAST(sum(pt.quantity_3m) FILTER (WHERE pt.event_type = 'complaint_received') AS BIGINT) AS a24,
           CAST(sum(pt.quantity_12m) FILTER (WHERE pt.event_type = 'complaint_received') AS BIGINT) AS a25,
           CAST(sum(pt.quantity_all) FILTER (WHERE pt.event_type = 'complaint_received') AS BIGINT) AS a26,
           (coalesce(max(pt.decayed_all_hl12m) FILTER (WHERE pt.event_type = 'complaint_received'), CAST('0.0' AS DOUBLE))) AS a27,
           CAST(sum(pt.quantity_3m) FILTER (WHERE pt.event_type = 'platform_takedown') AS BIGINT) AS a28,
           CAST(sum(pt.quantity_12m) FILTER (WHERE pt.event_type = 'platform_takedown') AS BIGINT) AS a29,
           CAST(sum(pt.quantity_all) FILTER (WHERE pt.event_type = 'platform_takedown') AS BIGINT) AS a30,
           (coalesce(max(pt.decayed_all_hl36m) FILTER (WHERE pt.event_type = 'platform_takedown'), CAST('0.0' AS DOUBLE))) AS a31,
           CAST(sum(pt.rows_24m) FILTER (WHERE pt.event_type = 'annual_report_late') AS BIGINT) AS a32,
           CAST(sum(pt.rows_all) FILTER (WHERE pt.event_type = 'annual_report_late') AS BIGINT) AS a33,
           (coalesce(max(pt.decayed_all_hl24m) FILTER (WHERE pt.event_type = 'annual_report_late'), CAST('0.0' AS DOUBLE))) AS a34,
           CAST(sum(pt.quantity_3m) FILTER (WHERE pt.event_type = 'patent_filed') AS BIGINT) AS a35,
           CAST(sum(pt.quantity_12m) FILTER (WHERE pt.event_type = 'patent_filed') AS BIGINT) AS a36,
           CAST(sum(pt.quantity_36m) FILTER (WHERE pt.event_type = 'patent_filed') AS BIGINT) AS a37,
           CAST(sum(pt.quantity_all) FILTER (WHERE pt.event_type = 'patent_filed') AS BIGINT) AS a38,
           CAST(sum(pt.quantity_36m) FILTER (WHERE pt.event_type = 'patent_granted') AS BIGINT) AS a39,
           CAST(sum(pt.quantity_all) FILTER (WHERE pt.event_type = 'patent_granted') AS BIGINT) AS a40,
           CAST(sum(pt.quantity_3m) FILTER (WHERE pt.event_type = 'trademark_filed') AS BIGINT) AS a41,
           CAST(sum(pt.quantity_12m) FILTER (WHERE pt.event_type = 'trademark_filed') AS BIGINT) AS a42,
           CAST(sum(pt.quantity_36m) FILTER (WHERE pt.event_type = 'trademark_filed') AS BIGINT) AS a43,
           CAST(sum(pt.quantity_all) FILTER (WHERE pt.event_type = 'trademark_filed') AS BIGINT) AS a44,
           CAST(sum(pt.quantity_36m_skip3m) FILTER (WHERE pt.event_type IN ('patent_filed', 'trademark_filed')) AS BIGINT) AS a45,
           CAST(sum(pt.quantity_3m) FILTER (WHERE pt.event_type IN ('patent_filed', 'trademark_filed')) AS BIGINT) AS a46,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'inspection_passed') AS BIGINT) AS a47,
           CAST(sum(pt.rows_all) FILTER (WHERE pt.event_type = 'inspection_passed') AS BIGINT) AS a48,
           CAST(sum(pt.rows_3m) FILTER (WHERE pt.event_type = 'commitment_signed') AS BIGINT) AS a49,
           CAST(sum(pt.rows_6m) FILTER (WHERE pt.event_type = 'commitment_signed') AS BIGINT) AS a50,
           CAST(sum(pt.rows_12m) FILTER (WHERE pt.event_type = 'commitment_signed') AS BIGINT) AS a51,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'commitment_signed') AS BIGINT) AS a52,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type IN ('honor_demonstration', 'honor_advantage')) AS BIGINT) AS a53,
           CAST(sum(pt.rows_36m) FILTER (WHERE pt.event_type = 'ipms_certified') AS BIGINT) AS a54,
           min(pt.years_since_all) FILTER (WHERE pt.event_type = 'inspection_passed') AS a55,
           CAST(sum(pt.rows_year0) FILTER (WHERE pt.event_type = 'inspection_failed') AS BIGINT) AS a56,
           CAST(sum(pt.rows_year0) FILTER (WHERE pt.event_type = 'inspection_passed') AS BIGINT) AS a57,
           CAST(sum(pt.rows_year1) FILTER (WHERE pt.event_type = 'inspection_failed') AS BIGINT) AS a58,
           CAST(sum(pt.rows_year1) FILTER (WHERE pt.event_type = 'inspection_passed') AS BIGINT) AS a59
    FROM per_type pt
    GROUP BY pt.entity_id
), entity_lists AS (
    SELECT l.entity_id,
           bool_or(l.list = 'red' AND l.in_force) AS on_red_list,
           sum(CASE WHEN l.list = 'red' THEN 1 ELSE 0 END) AS red_list_entries,
           bool_or(l.list = 'untrustworthy' AND l.in_force) AS on_untrustworthy_list,
           bool_or(l.list = 'serious_violation' AND l.in_force) AS on_serious_violation_list,
           bool_or(l.list = 'abnormal_operation' AND l.in_force) AS on_abnormal_operation_list
    FROM (
        SELECT l.entity_id, l.list, l.entered_on <= DATE '2025-12-31' AND (l.removed_on IS NULL OR l.removed_on > DATE '2025-12-31') AND NOT (l.list = 'serious_violation' AND l.entered_on <= DATE '2022-12-31') AND NOT (l.list = 'untrustworthy' AND l.entered_on <= DATE '2024-12-31') AS in_force
        FROM lists l
        WHERE l.entered_on <= DATE '2025-12-31' AND (l.withdrawn_on IS NULL OR l.withdrawn_on > DATE '2025-12-31')
    ) l
    GROUP BY l.entity_id
), rel_links AS (
    SELECT x.entity_id, x.related_id, x.relation, x.from_on, x.to_on,
           x.recorded_on <= DATE '2025-12-31' AND x.from_on <= DATE '2025-12-31' AND (x.to_on IS NULL OR x.to_on > DATE '2025-12-31') AS in_force
    FROM relations x
    WHERE x.recorded_on <= DATE '2025-12-31' AND x.from_on <= DATE '2025-12-31' AND x.entity_id <> x.related_id
), rel_ties_pairs AS (
    SELECT DISTINCT t.entity_id, t.related_id FROM (
        SELECT x.entity_id, x.related_id FROM rel_links x WHERE x.in_force AND x.relation IN ('shared_legal_representative', 'shareholder', 'shared_address')
        UNION ALL
        SELECT x.related_id AS entity_id, x.entity_id AS related_id FROM rel_links x WHERE x.in_force AND x.relation IN ('shared_legal_representative', 'shareholder', 'shared_address')
    ) t
), rel_agencies_pairs AS (
    SELECT x.related_id AS entity_id, x.entity_id AS related_id
    FROM rel_links x WHERE x.in_force AND x.relation = 'agency_client'
), rel_served AS (
    SELECT x.entity_id AS agency_id, x.related_id AS client_id, x.from_on, x.to_on
    FROM rel_links x WHERE x.relation = 'agency_client' AND (x.to_on IS NULL OR date_diff('day', x.to_on, DATE '2025-12-31') < 1096)
), rel_touched AS (
    SELECT DISTINCT t.id FROM (
        SELECT related_id AS id FROM rel_ties_pairs
        UNION ALL SELECT related_id AS id FROM rel_agencies_pairs
        UNION ALL SELECT client_id AS id FROM rel_served
    ) t
), rel_events AS (
    SELECT ev.entity_id, ev.event_type, ev.occurred_on, date_diff('day', ev.occurred_on, DATE '2025-12-31') AS ago
    FROM events ev JOIN rel_touched t ON t.id = ev.entity_id
    WHERE ev.recorded_on <= DATE '2025-12-31' AND (ev.repaired_on IS NULL OR ev.repaired_on > DATE '2025-12-31') AND ev.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed')
      AND date_diff('day', ev.occurred_on, DATE '2025-12-31') < 1096
), rel_records AS (
    SELECT re.entity_id, count(*) FILTER (WHERE re.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed') AND re.ago < 365) AS n0, count(*) FILTER (WHERE re.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing', 'infringement_penalty', 'counterfeit_patent_penalty', 'infringement_judgment', 'agency_misconduct', 'false_materials', 'commitment_breach', 'refusal_to_comply', 'inspection_failed') AND re.ago < 1096) AS n1
    FROM rel_events re
    GROUP BY re.entity_id
), rel_lists AS (
    SELECT l.entity_id, max(CASE WHEN l.list = 'serious_violation' THEN 1 ELSE 0 END) AS l0, max(CASE WHEN l.list = 'untrustworthy' THEN 1 ELSE 0 END) AS l1
    FROM lists l JOIN rel_touched t ON t.id = l.entity_id
    WHERE l.entered_on <= DATE '2025-12-31' AND (l.removed_on IS NULL OR l.removed_on > DATE '2025-12-31') AND NOT (l.list = 'serious_violation' AND l.entered_on <= DATE '2022-12-31') AND NOT (l.list = 'untrustworthy' AND l.entered_on <= DATE '2024-12-31')
    GROUP BY l.entity_id
), rel_ties_values AS (
    SELECT p.entity_id, count(*) AS entities, CAST(sum(coalesce(rl.l0, 0)) AS BIGINT) AS l0, CAST(sum(coalesce(rl.l1, 0)) AS BIGINT) AS l1, CAST(sum(coalesce(rr.n0, 0)) AS BIGINT) AS n0, count(*) FILTER (WHERE rr.n0 > 0) AS with_n0, CAST(sum(coalesce(rr.n1, 0)) AS BIGINT) AS n1, count(*) FILTER (WHERE rr.n1 > 0) AS with_n1
    FROM rel_ties_pairs p
    LEFT JOIN rel_lists rl ON rl.entity_id = p.related_id
    LEFT JOIN rel_records rr ON rr.entity_id = p.related_id
    GROUP BY p.entity_id
), rel_agencies_values AS (
    SELECT p.entity_id, count(*) AS entities, CAST(sum(coalesce(rl.l0, 0)) AS BIGINT) AS l0, CAST(sum(coalesce(rl.l1, 0)) AS BIGINT) AS l1, CAST(sum(coalesce(rr.n0, 0)) AS BIGINT) AS n0, count(*) FILTER (WHERE rr.n0 > 0) AS with_n0, CAST(sum(coalesce(rr.n1, 0)) AS BIGINT) AS n1, count(*) FILTER (WHERE rr.n1 > 0) AS with_n1
    FROM rel_agencies_pairs p
    LEFT JOIN rel_lists rl ON rl.entity_id = p.related_id
    LEFT JOIN rel_records rr ON rr.entity_id = p.related_id
    GROUP BY p.entity_id
), rel_through_links AS (
    SELECT s.agency_id, s.client_id, count(re.entity_id) FILTER (WHERE re.event_type IN ('abnormal_patent_filing', 'malicious_trademark_filing') AND re.ago < 1096) AS t0
    FROM rel_served s
    LEFT JOIN rel_events re ON re.entity_id = s.client_id AND re.occurred_on >= s.from_on
         AND (s.to_on IS NULL OR re.occurred_on < s.to_on)
    GROUP BY s.agency_id, s.client_id, s.from_on
), rel_clients_values AS (
    SELECT tl.agency_id AS entity_id, count(DISTINCT tl.client_id) AS entities, CAST(sum(tl.t0) AS BIGINT) AS t0, count(DISTINCT CASE WHEN tl.t0 > 0 THEN tl.client_id END) AS with_t0
    FROM rel_through_links tl
    GROUP BY tl.agency_id
), rel_related AS (
    SELECT k.entity_id,
           coalesce(max(k.related_entities), 0) AS related_entities,
           coalesce(max(k.related_serious_violation), 0) AS related_serious_violation,
           coalesce(max(k.related_untrustworthy), 0) AS related_untrustworthy,
           coalesce(max(k.related_adverse_12m), 0) AS related_adverse_12m,
           coalesce(max(k.related_adverse_36m), 0) AS related_adverse_36m,
           coalesce(max(k.agency_clients_36m), 0) AS agency_clients_36m,
           coalesce(max(k.agency_client_findings_36m), 0) AS agency_client_findings_36m,
           coalesce(max(k.agency_client_finding_share_36m), CAST('0.0' AS DOUBLE)) AS agency_client_finding_share_36m,
           coalesce(max(k.client_agency_adverse_36m), 0) AS client_agency_adverse_36m
    FROM (
        SELECT v_ties.entity_id, v_ties.entities AS related_entities, v_ties.l0 AS related_serious_violation, v_ties.l1 AS related_untrustworthy, v_ties.n0 AS related_adverse_12m, v_ties.n1 AS related_adverse_36m, CAST(NULL AS BIGINT) AS agency_clients_36m, CAST(NULL AS BIGINT) AS agency_client_findings_36m, CAST(NULL AS DOUBLE) AS agency_client_finding_share_36m, CAST(NULL AS BIGINT) AS client_agency_adverse_36m FROM rel_ties_values v_ties
        UNION ALL SELECT v_agencies.entity_id, CAST(NULL AS BIGINT) AS related_entities, CAST(NULL AS BIGINT) AS related_serious_violation, CAST(NULL AS BIGINT) AS related_untrustworthy, CAST(NULL AS BIGINT) AS related_adverse_12m, CAST(NULL AS BIGINT) AS related_adverse_36m, CAST(NULL AS BIGINT) AS agency_clients_36m, CAST(NULL AS BIGINT) AS agency_client_findings_36m, CAST(NULL AS DOUBLE) AS agency_client_finding_share_36m, v_agencies.n1 AS client_agency_adverse_36m FROM rel_agencies_values v_agencies
        UNION ALL SELECT v_clients.entity_id, CAST(NULL AS BIGINT) AS related_entities, CAST(NULL AS BIGINT) AS related_serious_violation, CAST(NULL AS BIGINT) AS related_untrustworthy, CAST(NULL AS BIGINT) AS related_adverse_12m, CAST(NULL AS BIGINT) AS related_adverse_36m, v_clients.entities AS agency_clients_36m, v_clients.t0 AS agency_client_findings_36m, CASE WHEN v_clients.entities > 0 THEN CAST(v_clients.with_t0 AS DOUBLE) / CAST(v_clients.entities AS DOUBLE) ELSE CAST('0.0' AS DOUBLE) END AS agency_client_finding_share_36m, CAST(NULL AS BIGINT) AS client_agency_adverse_36m FROM rel_clients_values v_clients
    ) k
    GROUP BY k.entity_id
)
SELECT r.entity_id AS entity_id,
       DATE '2025-12-31' AS as_of,
       CAST(date_diff('day', r.registered_on, DATE '2025-12-31') AS DOUBLE) / CAST('365.25' AS DOUBLE) AS age_years,
       r.registered_capital AS registered_capital,
       r.locations AS locations,
       coalesce(r.kind = 'agency', FALSE) AS is_agency,
       r.online_seller AS online_seller,
       r.industry AS industry,
       coalesce(ea.a0, 0) AS adverse_3m,
       coalesce(ea.a1, 0) AS adverse_12m,
       coalesce(ea.a2, 0) AS adverse_24m,
       coalesce(ea.a3, 0) AS adverse_36m,
       coalesce(ea.a4, 0) AS adverse_all,
       coalesce(ea.a5, 0) AS abnormal_patent_filing_36m,
       coalesce(ea.a6, 0) AS malicious_trademark_filing_36m,
       coalesce(ea.a7, 0) AS infringement_penalty_36m,
       coalesce(ea.a8, 0) AS counterfeit_patent_penalty_36m,
       coalesce(ea.a9, 0) AS infringement_judgment_36m,
       coalesce(ea.a10, 0) AS agency_misconduct_36m,
       coalesce(ea.a11, 0) AS false_materials_36m,
       coalesce(ea.a12, 0) AS commitment_breach_36m,
       coalesce(ea.a13, 0) AS refusal_to_comply_36m,
       coalesce(ea.a14, 0) AS inspection_failed_36m,
       coalesce(ea.a15, 0) AS abnormal_patent_filing_12m,
       coalesce(ea.a16, 0) AS malicious_trademark_filing_12m,
       coalesce(ea.a17, 0) AS adverse_types_36m,
       CASE WHEN ea.a18 IS NULL THEN CAST('10.0' AS DOUBLE) ELSE least(CAST('10.0' AS DOUBLE), CAST(ea.a18 AS DOUBLE) / CAST('365.25' AS DOUBLE)) END AS years_since_adverse,
       coalesce(ea.a19, CAST('0.0' AS DOUBLE)) AS adverse_decayed,
       CASE WHEN ea.a20 IS NULL THEN CAST('10.0' AS DOUBLE) ELSE least(CAST('10.0' AS DOUBLE), CAST(ea.a20 AS DOUBLE) / CAST('365.25' AS DOUBLE)) END AS years_since_failed_inspection,
       coalesce(CASE WHEN CAST(coalesce(ea.a21, 0) AS DOUBLE) * CAST('1.0' AS DOUBLE) + CAST('1.0' AS DOUBLE) > 0 THEN CAST(coalesce(ea.a22, 0) AS DOUBLE) / (CAST(coalesce(ea.a21, 0) AS DOUBLE) * CAST('1.0' AS DOUBLE) + CAST('1.0' AS DOUBLE)) END, CAST('0.0' AS DOUBLE)) AS inspection_fail_share_all,
       coalesce(ea.a23, CAST('0.0' AS DOUBLE)) AS fines_36m,
       coalesce(ea.a24, 0) AS complaint_received_3m,
       coalesce(ea.a25, 0) AS complaint_received_12m,
       coalesce(ea.a26, 0) AS complaint_received_all,
       coalesce(ea.a27, CAST('0.0' AS DOUBLE)) AS complaints_decayed,
       coalesce(ea.a28, 0) AS platform_takedown_3m,
       coalesce(ea.a29, 0) AS platform_takedown_12m,
       coalesce(ea.a30, 0) AS platform_takedown_all,
       coalesce(ea.a31, CAST('0.0' AS DOUBLE)) AS takedowns_decayed,
       coalesce(ea.a32, 0) AS annual_report_late_24m,
       coalesce(ea.a33, 0) AS annual_report_late_all,
       coalesce(ea.a34, CAST('0.0' AS DOUBLE)) AS late_reports_decayed,
       coalesce(ea.a35, 0) AS patent_filed_3m,
       coalesce(ea.a36, 0) AS patent_filed_12m,
       coalesce(ea.a37, 0) AS patent_filed_36m,
       coalesce(ea.a38, 0) AS patent_filed_all,
       coalesce(ea.a39, 0) AS patent_granted_36m,
       coalesce(ea.a40, 0) AS patent_granted_all,
       coalesce(ea.a41, 0) AS trademark_filed_3m,
       coalesce(ea.a42, 0) AS trademark_filed_12m,
       coalesce(ea.a43, 0) AS trademark_filed_36m,
       coalesce(ea.a44, 0) AS trademark_filed_all,
       coalesce(CASE WHEN CAST(coalesce(ea.a45, 0) AS DOUBLE) * CAST('0.09090909090909091' AS DOUBLE) + CAST('1.0' AS DOUBLE) > 0 THEN CAST(coalesce(ea.a46, 0) AS DOUBLE) / (CAST(coalesce(ea.a45, 0) AS DOUBLE) * CAST('0.09090909090909091' AS DOUBLE) + CAST('1.0' AS DOUBLE)) END, CAST('0.0' AS DOUBLE)) AS filing_burst_ratio,
       CASE WHEN CAST(coalesce(ea.a37, 0) AS DOUBLE) * CAST('1.0' AS DOUBLE) + CAST('0.0' AS DOUBLE) > 0 THEN CAST(coalesce(ea.a39, 0) AS DOUBLE) / (CAST(coalesce(ea.a37, 0) AS DOUBLE) * CAST('1.0' AS DOUBLE) + CAST('0.0' AS DOUBLE)) END AS grant_ratio_36m,
       coalesce(ea.a47, 0) AS inspection_passed_36m,
       coalesce(ea.a48, 0) AS inspection_passed_all,
       coalesce(ea.a49, 0) AS commitment_signed_3m,
       coalesce(ea.a50, 0) AS commitment_signed_6m,
       coalesce(ea.a51, 0) AS commitment_signed_12m,
       coalesce(ea.a52, 0) AS commitment_signed_36m,
       coalesce(ea.a53, 0) AS honours_36m,
       coalesce(ea.a54, 0) AS ipms_certified_36m,
       CASE WHEN ea.a55 IS NULL THEN CAST('10.0' AS DOUBLE) ELSE least(CAST('10.0' AS DOUBLE), CAST(ea.a55 AS DOUBLE) / CAST('365.25' AS DOUBLE)) END AS years_since_clean_inspection,
       coalesce(ea.a56, 0) AS inspection_failed_this_year,
       coalesce(ea.a57, 0) AS inspection_passed_this_year,
       coalesce(ea.a58, 0) AS inspection_failed_last_year,
       coalesce(ea.a59, 0) AS inspection_passed_last_year,
       CAST(12 AS BIGINT) AS as_of_month,
       coalesce(el.on_red_list, FALSE) AS on_red_list,
       coalesce(el.red_list_entries, 0) AS red_list_entries,
       coalesce(el.on_untrustworthy_list, FALSE) AS on_untrustworthy_list,
       coalesce(el.on_serious_violation_list, FALSE) AS on_serious_violation_list,
       coalesce(el.on_abnormal_operation_list, FALSE) AS on_abnormal_operation_list,
       coalesce(rv.related_entities, 0) AS related_entities,
       coalesce(rv.related_serious_violation, 0) AS related_serious_violation,
       coalesce(rv.related_untrustworthy, 0) AS related_untrustworthy,
       coalesce(rv.related_adverse_12m, 0) AS related_adverse_12m,
       coalesce(rv.related_adverse_36m, 0) AS related_adverse_36m,
       coalesce(rv.agency_clients_36m, 0) AS agency_clients_36m,
       coalesce(rv.agency_client_findings_36m, 0) AS agency_client_findings_36m,
       coalesce(rv.agency_client_finding_share_36m, CAST('0.0' AS DOUBLE)) AS agency_client_finding_share_36m,
       coalesce(rv.client_agency_adverse_36m, 0) AS client_agency_adverse_36m
FROM registered r
LEFT JOIN per_entity ea ON ea.entity_id = r.entity_id
LEFT JOIN entity_lists el ON el.entity_id = r.entity_id
LEFT JOIN rel_related rv ON rv.entity_id = r.entity_id
ORDER BY r.entity_id
