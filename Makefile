# The two commands of the README:
#   make run    set everything up, then start the bot on the embedded default
#   make test   set everything up, then run the whole test suite
# Set-up is idempotent: the virtual environment (.venv) is built from uv.lock, and the few
# Debian packages the project needs are installed when missing.

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.frontdesk-installed
APT_PKGS := graphviz espeak-ng chromium
UV_VERSION := 0.13.8

.PHONY: run test setup system-packages

run: setup
	$(VENV)/bin/frontdesk run bot.yaml

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

setup: $(STAMP) system-packages

$(STAMP): pyproject.toml uv.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	UV_PYTHON_DOWNLOADS=never python3 -m uv sync --frozen --python python3
	@touch $(STAMP)

system-packages:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
