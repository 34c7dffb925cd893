# Two commands do all the set-up on a fresh machine:
#   make book   -> creates .venv if missing, builds the book offline, every chapter executed on its quick preset
#   make test   -> creates .venv if missing, runs the tests and the nbval checks of every chapter
# Other targets: make lab (JupyterLab), make lock (re-resolve the pins), make clean.

PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
VENDOR      := book/_vendor
MATHJAX     := $(VENDOR)/mathjax/tex-chtml.js
MATHJAX_VERSION := 3.2.2
WIDGETS     := $(VENDOR)/widgets/embed-amd.js
WIDGETS_PATCHED := $(VENDOR)/widgets/.patched
HTML_MANAGER_VERSION := 1.0.6
REQUIREJS_VERSION := 2.3.4
# Quiet pip, without the noise of the local wheel mirrors on the build machines.
PIP_QUIET   := --quiet --disable-pip-version-check
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONHASHSEED := 0

.PHONY: book test lab lock clean venv vendor

venv: $(STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	@test -x $(BIN)/python || { echo ">> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo ">> installing the pinned environment (requirements/lock.txt): about 2 minutes the first time"
	@$(BIN)/python -m pip install $(PIP_QUIET) -r requirements/lock.txt 2>&1 | grep -v "is ignored: it is neither" || true
	@$(BIN)/python -m pip install $(PIP_QUIET) --no-deps -e . 2>&1 | grep -v "is ignored: it is neither" || true
	@$(BIN)/python -c "import lle_lib, torch, torchvision, jupyter_book" || { echo "!! the environment is incomplete"; exit 1; }
	@touch $(STAMP)

# MathJax and the widget manager served from the site itself, so the built pages work offline
# (equations render, and the interactive figures of later chapters run in the browser without a kernel).
vendor: $(MATHJAX) $(WIDGETS_PATCHED)

# tex-chtml.js (1.2 MB) with the CHTML fonts and the TeX extensions it loads on demand (a page fetches only the few
# it uses); the menu's speech engine (sre, 4 MB) is left out.
$(MATHJAX):
	@rm -rf $(VENDOR)/mathjax && mkdir -p $(VENDOR)/mathjax
	@echo ">> vendoring MathJax $(MATHJAX_VERSION) from the npm registry"
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null \
	  && tar -xzf mathjax-$(MATHJAX_VERSION).tgz package/es5 \
	  && cd package/es5 && cp -r tex-chtml.js input output a11y ui $(CURDIR)/$(VENDOR)/mathjax/ \
	  && rm -rf $(CURDIR)/$(VENDOR)/mathjax/output/svg $(CURDIR)/$(VENDOR)/mathjax/output/svg.js \
	  && rm -rf $$tmp \
	  || { echo "!! could not fetch MathJax with npm; equations will need the CDN"; rm -rf $$tmp; \
	       printf '%s\n' "/* MathJax not vendored */" "var s=document.createElement('script');" \
	       "s.src='https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js';document.head.appendChild(s);" > $(CURDIR)/$(MATHJAX); }

$(WIDGETS):
	@mkdir -p $(VENDOR)/widgets
	@echo ">> vendoring @jupyter-widgets/html-manager $(HTML_MANAGER_VERSION) and require.js $(REQUIREJS_VERSION)"
	@tmp=$$(mktemp -d) && cd $$tmp \
	  && npm pack --silent @jupyter-widgets/html-manager@$(HTML_MANAGER_VERSION) requirejs@$(REQUIREJS_VERSION) >/dev/null \
	  && tar -xzf jupyter-widgets-html-manager-$(HTML_MANAGER_VERSION).tgz && tar -xzf requirejs-$(REQUIREJS_VERSION).tgz \
	  && cp package/require.js package/dist/embed-amd.js package/dist/*.woff* package/dist/*.ttf package/dist/*.eot \
	        package/dist/*.svg $(CURDIR)/$(VENDOR)/widgets/ && rm -rf $$tmp \
	  || { echo "!! could not fetch the widget manager with npm; interactive figures will need the CDN"; rm -rf $$tmp; \
	       printf '%s\n' "/* not vendored */" > $(CURDIR)/$(VENDOR)/widgets/require.js; \
	       printf '%s\n' "/* not vendored */" > $(CURDIR)/$(WIDGETS); }

# html-manager 1.0.6 (ipywidgets 8's base) reads `description.length` in updateTooltip, and a widgets.Image has no
# description: an Image with a tooltip (its alt text) fails to render ("Could not create a view"). Guard the read.
$(WIDGETS_PATCHED): $(WIDGETS)
	@sed -i 's/0===this\.model\.get("description")\.length/!(this.model.get("description")||"").length/g' $(WIDGETS)
	@touch $@

# LLE_PROGRESS=off: the executed chapters draw no progress bars (lle_lib/progress.py), which would leave empty widget
# boxes in the pages. The executed notebooks replace the stripped sources as the pages' .ipynb downloads
# (_ext/lle_book.py).
book: $(STAMP) $(MATHJAX) $(WIDGETS_PATCHED)
	@start=$$(date +%s); \
	LLE_PROGRESS=off $(BIN)/jupyter-book build . --all --builder html -W -n --keep-going || exit 1; \
	echo ">> built in $$(( $$(date +%s) - start )) s"; \
	echo ">> open $(CURDIR)/_build/html/index.html"

test: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/python -m pytest tests book --nbval-lax -p no:cacheprovider; status=$$?; \
	echo ">> tests took $$(( $$(date +%s) - start )) s"; exit $$status

lab: $(STAMP)
	$(BIN)/jupyter lab book

lock:
	rm -rf /tmp/lle-lock-venv && $(PYTHON) -m venv /tmp/lle-lock-venv
	/tmp/lle-lock-venv/bin/pip install $(PIP_QUIET) -r requirements/direct.txt
	{ echo "# Exact pins of the whole build environment (Python 3.11, x86_64, CPU), resolved from requirements/direct.txt."; \
	  echo "# The Makefile installs this file; the package itself (pyproject.toml) only declares compatible ranges."; \
	  echo "# Regenerate with: make lock"; /tmp/lle-lock-venv/bin/pip freeze --exclude-editable; } > requirements/lock.txt

clean:
	rm -rf _build $(VENDOR)
