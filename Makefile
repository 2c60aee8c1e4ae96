# SomaAgentHub: offline render, the promotion gate and the tests. `make help` lists targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STACK  ?= dev
PLAN   ?= build/$(STACK)/plan.json
PROMTOOL_BIN := build/bin/promtool

.PHONY: help venv promtool render gate app-manifests test amtool cosign redis bench-gate bench-render bench-gateway bench-agents memory-eval vendor-chart clean \
        image-tools images images-test images-release images-gate mirror mirror-check \
        sbom-inventory sbom-fetch sbom-find refresh-images refresh-charts load-local

help:
	@echo "make render STACK=dev|staging|prod   render the stack offline into build/<stack>/ and run the gate"
	@echo "make gate STACK=prod [PLAN=]  run the policy gate over a rendered plan"
	@echo "make app-manifests STACK=prod [OUT=dir]  the services' manifests for the applications repository (<path>/<env>/1-manifest/) from the rendered plan"
	@echo "make test                     install what is needed and run every test"
	@echo "make promtool                 put Prometheus' promtool (Debian package prometheus) in build/bin for the rule tests"
	@echo "make bench-gate               time the gate over 10,000 synthetic workloads"
	@echo "make bench-render [STACK=prod] time the full render (charts expanded) against the import floor"
	@echo "make bench-gateway            the gateway's added latency per request (p50, p99) with authorization on"
	@echo "make bench-agents [QUICK=1]   orchestrator overhead per step, crew compile, memory query latency (10k/100k chunks), ingestion"
	@echo "make load-local [SCENARIO=a,b] [SCALE=0.25] [RECORD=stack]  the load-test scenarios against the gateway on 127.0.0.1: rate, p50/p95/p99, errors, each SLO"
	@echo "make memory-eval              retrieval quality (recall@5, MRR) of the memory gateway's paths over the repository's docs"
	@echo "make vendor-chart NAME= VERSION= GIT= TAG= CHART_PATH= [DEPS=\"n=repo@ref:path ...\"] [STEPS=set-chart-version|cert-manager-release-chart|envoy-gateway-release-chart|istio-release-stamp]"
	@echo "make vendor-chart NAME= AGAIN=1   re-vendor exactly what platform.lock.yaml records"
	@echo "make images                   build every service under apps/ into build/images/<app>/ (OCI layout, SBOM, digest)"
	@echo "make images-test              the slow image tests: build the fixture app twice, same digest; runs read-only as non-root"
	@echo "make images-gate REPORTS=\"a.trivy.json ...\"   fail on critical findings (waivers: tools/images/waivers.yaml)"
	@echo "make images-release REGISTRY=host/path COSIGN_KEY= COSIGN_PUB= [INSECURE=1]  push, sign, attest, verify, pin in platform.lock.yaml"
	@echo "make mirror STACK=prod COSIGN_KEY= COSIGN_PUB= [ONLY=key] [SCANNER=]  third-party images into the stack's registry: upstream signature, scan, SBOM, platform signature (report: build/mirror/report.json)"
	@echo "make mirror-check STACK=prod  refuse the rendered stack unless the mirror report lists every image signed with the key admission trusts"
	@echo "make sbom-inventory [STACK=prod]  where every catalog image's SBOM lives (ours in the platform registry, upstream's) -> build/sbom/inventory.json"
	@echo "make sbom-fetch [STACK=prod] [UPSTREAM=1]  verify and cache our SBOM attestations (and the upstream ones the inventory lists) in build/sbom/cache"
	@echo "make sbom-find PACKAGE=<name|purl> [VERSION=<v>]  which images contain the package (cached attestations + build/images)"
	@echo "make refresh-images [ONLY=key] [WRITE=1]  moved tags and newer releases within each image's update policy, verified -> build/refresh/"
	@echo "make refresh-charts [ONLY=key]  newer upstream chart releases within policy, with the make vendor-chart command"
	@echo "make promote FROM=dev TO=staging PROMOTION_KEY=   (or FROM=staging TO=prod [MAX_AGE_DAYS=7]) gate, check, sign and record a release"
	@echo "make rollback STACK=prod TO=<record> PROMOTION_KEY=   restore an earlier record's commit through the same gates"
	@echo "make promotion-log            verify the promotion log (chain, signatures, history) and print what each stack runs"
	@echo "make migrations-check         the apps' schema steps against the expand/contract rule and prod's promotion log"

$(VENV)/.installed: requirements.txt requirements-dev.txt policies/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# promtool runs the alert rules' unit tests (tests/core/test_alert_rules_promtool.py). Taken from the
# Debian package `prometheus` without installing it (no server, no service): the promtool on PATH if
# there is one, otherwise the package is downloaded and only usr/bin/promtool unpacked. Fails when
# neither works; `make test` then goes on and those tests skip, saying why.
$(PROMTOOL_BIN):
	@mkdir -p $(@D)
	@if command -v promtool >/dev/null 2>&1; then ln -sf "$$(command -v promtool)" $@; else \
	  tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	  { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus; }; } && \
	  dpkg-deb -x prometheus_*.deb unpacked && cp unpacked/usr/bin/promtool "$(CURDIR)/$@"; fi
	@$@ --version | head -1

promtool: $(PROMTOOL_BIN)

render: venv
	$(PY) -m tools.render --stack $(STACK)
	$(PY) -m tools.gate --stack $(STACK) --plan $(PLAN)

# The services' application objects as the files `pulumi up` renders into the applications repository
# (agents.delivery.mode argocd; docs/architecture/gitops.md): from build/$(STACK)/plan.json (`make render` first)
# into OUT/<path>/<environment>/1-manifest/; refused, nothing written, when the gate blocks any of them.
app-manifests: venv
	$(PY) -m tools.app_manifests --stack $(STACK) --plan $(PLAN) $(if $(OUT),--out $(OUT))

gate: venv
	$(PY) -m tools.gate --stack $(STACK) --plan $(PLAN)

test: venv amtool cosign redis image-tools
	-@$(MAKE) --no-print-directory promtool
	$(PY) -m pytest -q -n $(or $(WORKERS),2) --dist loadfile

# Alertmanager's amtool for the Alertmanager configuration tests (they skip, saying why, without it)
amtool:
	@sh tools/fetch_amtool.sh .tools || echo "amtool not installed (Debian archive unreachable?): the amtool tests will skip"

# cosign (Debian 13's package) and Debian's docker-registry for the signature test (it skips, saying why, without them)
cosign:
	@sh tools/fetch_cosign.sh .tools || echo "cosign not installed (Debian archive unreachable?): the signature test will skip"

# The release pipeline's Debian tools (mmdebstrap, buildah, skopeo, docker-registry) and cosign; the registry
# test skips, saying why, without them
image-tools:
	@sh tools/fetch_image_tools.sh .tools || echo "image tools not installed (Debian archive unreachable?): the image tests will skip"

images: venv image-tools
	$(PY) -m tools.images build

# Slow (two full image builds): kept out of `make test`, run by .ci/run
images-test: venv image-tools
	SOMA_IMAGES_TEST=1 $(PY) -m pytest -q tests/images/test_image_build.py

images-gate: venv
	$(PY) -m tools.images gate $(REPORTS)

images-release: venv image-tools
	$(PY) -m tools.images release --registry $(REGISTRY) --key $(COSIGN_KEY) --public-key $(COSIGN_PUB) $(if $(INSECURE),--insecure-registry)

# Third-party images into the platform registry (docs/runbooks/supply-chain.md); needs Trivy v0.68.1 on PATH or SCANNER=
mirror: venv image-tools
	$(PY) -m tools.mirror run --stack $(STACK) --key $(COSIGN_KEY) --public-key $(COSIGN_PUB) \
	  $(foreach k,$(ONLY),--only $(k)) $(if $(SCANNER),--scanner "$(SCANNER)") $(if $(INSECURE),--insecure-registry)

# Promotion's supply-chain check over the rendered stack (make render STACK=prod first)
mirror-check: venv
	$(PY) -m tools.mirror check --stack $(STACK)

# Promotion (docs/runbooks/promotion.md): a release (commit + release id) through the target stack's gates at
# that commit, appended to promotions/log as a signed record and sent to the audit pipeline
.PHONY: promote rollback promotion-log migrations-check
promote: venv image-tools
	$(PY) -m tools.ops.promote promote --from $(FROM) --to $(TO) --key $(PROMOTION_KEY) \
	  $(if $(MAX_AGE_DAYS),--max-age-days $(MAX_AGE_DAYS)) $(if $(INSECURE),--insecure-registry)

rollback: venv image-tools
	$(if $(filter command line environment,$(origin STACK)),,$(error name the stack to roll back: make rollback STACK=prod TO=<record>))
	$(PY) -m tools.ops.promote rollback --stack $(STACK) --to $(TO) --key $(PROMOTION_KEY) $(if $(INSECURE),--insecure-registry)

promotion-log: venv cosign
	$(PY) -m tools.ops.promote verify-log
	$(PY) -m tools.ops.promote status

migrations-check: venv
	$(PY) -m tools.ops.migrations

# Supply-chain upkeep (docs/support.md, docs/runbooks/supply-chain.md)
sbom-inventory: venv
	$(PY) -m tools.ops.sbom inventory --stack $(if $(filter command line,$(origin STACK)),$(STACK),prod)

sbom-fetch: venv image-tools
	$(PY) -m tools.ops.sbom fetch --stack $(if $(filter command line,$(origin STACK)),$(STACK),prod) $(if $(UPSTREAM),--upstream)

sbom-find: venv
	$(PY) -m tools.ops.sbom find "$(PACKAGE)" $(if $(VERSION),--version "$(VERSION)")

refresh-images: venv image-tools
	$(PY) -m tools.ops.refresh images $(foreach k,$(ONLY),--only $(k)) $(if $(WRITE),--write)

refresh-charts: venv
	$(PY) -m tools.ops.refresh charts $(foreach k,$(ONLY),--only $(k))

# Debian's redis-server under .tools for the gateway's rate-limit tests (they skip, saying why, without it)
redis:
	@sh tools/fetch_redis.sh .tools || echo "redis-server not installed (Debian archive unreachable?): the gateway's Redis tests will skip"

bench-gate: venv
	$(PY) -m tools.bench_gate --workloads 10000

bench-gateway: venv redis
	PYTHONPATH=$$(sh tools/apps_path.sh) $(PY) -m soma_gateway.bench

memory-eval: venv
	PYTHONPATH=$$(sh tools/apps_path.sh) HF_HUB_OFFLINE=1 $(PY) -m soma_memory.evaluate

bench-agents: venv
	PYTHONPATH=$$(sh tools/apps_path.sh) $(PY) -m tools.bench_agents $(if $(QUICK),--quick)

bench-render: venv
	$(PY) -m tools.bench_render --stack $(if $(filter command line,$(origin STACK)),$(STACK),prod)

# Vendor one chart from its upstream Git tag into charts/$(NAME) and rewrite its catalog entry.
vendor-chart: venv
	$(PY) -m tools.vendor_chart --key $(NAME) $(if $(AGAIN),--again,--version $(VERSION) --git $(GIT) --tag $(TAG) --path $(CHART_PATH)) \
		$(foreach d,$(DEPS),--dep $(d)) $(foreach s,$(STEPS),--step $(s))
	@# upstream charts carry .gitignore files (subcharts, Chart.lock): stage every vendored byte anyway
	git add -f charts/$(NAME) platform.lock.yaml

# The load-test scenarios (components/ops/scenarios.yaml) against the gateway process on 127.0.0.1 with its
# stand-ins (docs/load-tests.md); bounded, and writes a stage result only with RECORD=<stack>
load-local: venv redis
	PYTHONPATH=$$(sh tools/apps_path.sh) $(PY) -m tools.ops.load_local $(if $(SCENARIO),--scenario $(SCENARIO)) \
		$(if $(SCALE),--scale $(SCALE)) $(if $(RECORD),--record $(RECORD))

clean:
	rm -rf build
