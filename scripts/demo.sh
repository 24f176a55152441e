#!/usr/bin/env bash
# The demo: a synthetic world -> features -> a trained, registered model -> stored scores -> the service.
# Called by `make demo` after the data has been generated and validated.
set -euo pipefail
DEMO_DIR=${1:-var/demo}
AS_OF=${2:-2025-12-31}
HOST=${3:-127.0.0.1}
PORT=${4:-8000}
BIN=.venv/bin
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# The only folder the service reads datasets and score files from (POST /v1/score-runs, import-scores).
export IPCREDIT_DATASET_ROOT=${IPCREDIT_DATASET_ROOT:-$DEMO_DIR}

say "Point-in-time features as of $AS_OF"
$BIN/ipcredit features --data "$DEMO_DIR/data" --as-of "$AS_OF" --out "$DEMO_DIR/features.parquet"

say "Training (out-of-time evaluation, MLflow run, registered model 'ipcredit')"
$BIN/ipcredit train --data "$DEMO_DIR/data" | tee "$DEMO_DIR/train.log"

PREVIOUS=$($BIN/python -c "from datetime import date; from dateutil.relativedelta import relativedelta; print(date.fromisoformat('$AS_OF') + relativedelta(day=1) - relativedelta(days=1))")
say "Last month's run ($PREVIOUS), stored, so the report has a month to compare with"
$BIN/ipcredit score --data "$DEMO_DIR/data" --as-of "$PREVIOUS" --out "$DEMO_DIR/scores-previous.parquet" --store

say "Scoring every entity as of $AS_OF with the champion, stored for the service"
$BIN/ipcredit score --data "$DEMO_DIR/data" --as-of "$AS_OF" --out "$DEMO_DIR/scores.parquet" --store

say "The monthly monitoring report (drift, expected performance, fairness, migration)"
$BIN/ipcredit report --as-of "$AS_OF" --out "$DEMO_DIR/report" --data "$DEMO_DIR/data"

say "Inspector roster for 双随机 draws (synthetic)"
$BIN/ipcredit inspectors demo --out "$DEMO_DIR/roster.csv" --count 40
$BIN/ipcredit inspectors load --file "$DEMO_DIR/roster.csv" --replace

say "API tokens"
SUPERVISOR=$($BIN/ipcredit tokens create --role supervisor | tail -n 1)
REVIEWER=$($BIN/ipcredit tokens create --role reviewer | tail -n 1)
ANALYST=$($BIN/ipcredit tokens create --role analyst | tail -n 1)
ENTITY=$($BIN/python -c "import pandas as pd; s = pd.read_parquet('$DEMO_DIR/scores.parquet'); print(s.sort_values('score').iloc[-1].entity_id)")
# A what-if body: the riskiest entity's own history, as a reviewer would post it.
$BIN/python - "$DEMO_DIR" "$ENTITY" "$AS_OF" <<'PY'
import json, sys
import pandas as pd
folder, entity, as_of = sys.argv[1], sys.argv[2], sys.argv[3]
def rows(table):
    frame = pd.read_parquet(f"{folder}/data/{table}.parquet")
    frame = frame[frame["entity_id"] == entity]
    return json.loads(frame.to_json(orient="records", date_format="iso", force_ascii=False))
def dates(row):  # ISO timestamps -> YYYY-MM-DD for the *_on columns
    return {k: v[:10] if k.endswith("_on") and isinstance(v, str) else v for k, v in row.items()}
body = {"as_of": as_of, "entity": dates(rows("entities")[0]),
        "events": [dates(r) for r in rows("events")], "lists": [dates(r) for r in rows("lists")]}
with open(f"{folder}/what-if.json", "w", encoding="utf-8") as fh:
    json.dump(body, fh, ensure_ascii=False, indent=1)
PY
cat > "$DEMO_DIR/requests.sh" <<TXT
# Example requests against the demo service (tokens were created by make demo).
export SUPERVISOR=$SUPERVISOR
export REVIEWER=$REVIEWER
export ANALYST=$ANALYST
curl -s http://$HOST:$PORT/health
curl -s -H "Authorization: Bearer \$SUPERVISOR" http://$HOST:$PORT/v1/entities/$ENTITY/risk
curl -s -H "Authorization: Bearer \$REVIEWER" http://$HOST:$PORT/v1/entities/$ENTITY/explanation
curl -s -X POST -H "Authorization: Bearer \$SUPERVISOR" -H 'Content-Type: application/json' \\
     -d '{"filter": {"region": "410100"}}' http://$HOST:$PORT/v1/sampling/draws
curl -s 'http://$HOST:$PORT/v1/public/draws?limit=5'
curl -s -X POST -H "Authorization: Bearer \$ANALYST" -H 'Content-Type: application/json' \\
     -d '{"dataset": "data", "score_file": "scores.parquet", "as_of": "$AS_OF"}' http://$HOST:$PORT/v1/score-runs
curl -s 'http://$HOST:$PORT/v1/public/lists?list=red'
curl -s -X POST -H "Authorization: Bearer \$ANALYST" -H 'Content-Type: application/json' \\
     -d @$DEMO_DIR/what-if.json http://$HOST:$PORT/v1/score
TXT

say "Where to look"
cat <<TXT
  scores:            $DEMO_DIR/scores.parquet
  monthly report:    $DEMO_DIR/report/report.html  (figures in $DEMO_DIR/report/report.json)
  features:          $DEMO_DIR/features.parquet
  MLflow runs:       .venv/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db  (then http://127.0.0.1:5000)
  API docs:          http://$HOST:$PORT/docs
  pages:             http://$HOST:$PORT/ui/sign-in  (public, no sign-in: http://$HOST:$PORT/ui/public/draws)
  sign in with:      supervisor $SUPERVISOR
                     reviewer   $REVIEWER
                     analyst    $ANALYST
  example requests:  $DEMO_DIR/requests.sh  (copy a line, or: bash $DEMO_DIR/requests.sh)

$(cat "$DEMO_DIR/requests.sh")
TXT

say "Serving on http://$HOST:$PORT (Ctrl-C to stop)"
exec $BIN/ipcredit serve --host "$HOST" --port "$PORT"
