# Embedded defaults for every setting (sourced by the Makefile's scripts). Any variable already
# set in the environment or in .env wins. All keys are documented in .env.example.
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -f "$_root/.env" ]; then set -a; . "$_root/.env"; set +a; fi
export APP_ENV="${APP_ENV:-development}"
export RASA_PORT="${RASA_PORT:-5005}"
export ACTION_PORT="${ACTION_PORT:-5055}"
export WEBAPP_PORT="${WEBAPP_PORT:-8080}"
export VOICE_HTTP_PORT="${VOICE_HTTP_PORT:-8081}"
export AUDIOSOCKET_PORT="${AUDIOSOCKET_PORT:-9092}"
export RASA_URL="${RASA_URL:-http://127.0.0.1:${RASA_PORT}}"
export ACTION_SERVER_URL="${ACTION_SERVER_URL:-http://127.0.0.1:${ACTION_PORT}/webhook}"
export WEBAPP_URL="${WEBAPP_URL:-http://127.0.0.1:${WEBAPP_PORT}}"
export RASA_TOKEN="${RASA_TOKEN:-dev-rasa-token}"
export SERVICE_TOKEN="${SERVICE_TOKEN:-dev-service-token}"
export SESSION_SECRET="${SESSION_SECRET:-dev-session-secret-change-me}"
export CHANNEL_TOKEN="${CHANNEL_TOKEN:-dev-channel-token}" ACTION_TOKEN="${ACTION_TOKEN:-dev-action-token}"
export MEDIA_STREAM_TOKEN="${MEDIA_STREAM_TOKEN:-dev-media-stream-token}"
export TRACKER_STORE_URL="${TRACKER_STORE_URL:-sqlite:///${_root}/var/rasa_tracker.db}"
# Rasa's event broker database (endpoints.yml); under the run directory, so the test stack (RUN_DIR=var/test) writes its own
export RASA_EVENTS_URL="${RASA_EVENTS_URL:-sqlite:///$(cd "$_root" && mkdir -p "${RUN_DIR:-var}" && cd "${RUN_DIR:-var}" && pwd)/rasa_events.db}"
export WEBAPP_DATABASE_URL="${WEBAPP_DATABASE_URL:-sqlite:///${_root}/var/webapp.db}"
# the knowledge the bot answers with: the desk's tables in the web app's database (set it empty for the files alone)
export KB_DATABASE_URL="${KB_DATABASE_URL-$WEBAPP_DATABASE_URL}"
export EMBEDDING_MODEL="${EMBEDDING_MODEL:-${_root}/models/e5-small-shebao}"
export KB_CACHE_DIR="${KB_CACHE_DIR:-${_root}/var/kb_cache}"
export CARDSYS_DATABASE_URL="${CARDSYS_DATABASE_URL:-sqlite:///${_root}/var/cardsys.db}"
export RASA_TELEMETRY_ENABLED=false
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export SANIC_HOST=127.0.0.1
export PYTHONPATH="${_root}${PYTHONPATH:+:$PYTHONPATH}"
export RASA_VENV="${RASA_VENV:-${_root}/.venv/rasa}" SVC_VENV="${SVC_VENV:-${_root}/.venv/svc}"
mkdir -p "$_root/var"
