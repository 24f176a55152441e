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

say "Point-in-time features as of $AS_OF"
$BIN/ipcredit features --data "$DEMO_DIR/data" --as-of "$AS_OF" --out "$DEMO_DIR/features.parquet"

say "Training (out-of-time evaluation, MLflow run, registered model 'ipcredit')"
$BIN/ipcredit train --data "$DEMO_DIR/data" | tee "$DEMO_DIR/train.log"

say "Scoring every entity as of $AS_OF with the champion, stored for the service"
$BIN/ipcredit score --data "$DEMO_DIR/data" --as-of "$AS_OF" --out "$DEMO_DIR/scores.parquet" --store

say "API tokens"
SUPERVISOR=$($BIN/ipcredit tokens create --role supervisor | tail -n 1)
REVIEWER=$($BIN/ipcredit tokens create --role reviewer | tail -n 1)
ENTITY=$($BIN/python -c "import pandas as pd; s = pd.read_parquet('$DEMO_DIR/scores.parquet'); print(s.sort_values('score').iloc[-1].entity_id)")
cat > "$DEMO_DIR/requests.sh" <<TXT
# Example requests against the demo service (tokens were created by make demo).
export SUPERVISOR=$SUPERVISOR
export REVIEWER=$REVIEWER
curl -s http://$HOST:$PORT/health
curl -s -H "Authorization: Bearer \$SUPERVISOR" http://$HOST:$PORT/v1/entities/$ENTITY/risk
curl -s -H "Authorization: Bearer \$REVIEWER" http://$HOST:$PORT/v1/entities/$ENTITY/explanation
curl -s -X POST -H "Authorization: Bearer \$SUPERVISOR" -H 'Content-Type: application/json' \\
     -d '{"seed": 20261121, "filter": {"region": "210600"}}' http://$HOST:$PORT/v1/sampling/draws
TXT

say "Where to look"
cat <<TXT
  scores:            $DEMO_DIR/scores.parquet
  features:          $DEMO_DIR/features.parquet
  MLflow runs:       .venv/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db  (then http://127.0.0.1:5000)
  API docs:          http://$HOST:$PORT/docs
  example requests:  $DEMO_DIR/requests.sh  (copy a line, or: bash $DEMO_DIR/requests.sh)

$(cat "$DEMO_DIR/requests.sh")
TXT

say "Serving on http://$HOST:$PORT (Ctrl-C to stop)"
exec $BIN/ipcredit serve --host "$HOST" --port "$PORT"
