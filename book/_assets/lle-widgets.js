/* Loaded on the pages that carry widget state, between require.js and the vendored embed-amd.js
   (@jupyter-widgets/html-manager 1.0.6), by nb_ipywidgets_js in _config.yml.
   1. Fonts: embed-amd.js takes its webpack public path from its AMD module's URL, which require.js resolves
      against the page ("book/@jupyter-widgets/html-manager/dist/*.woff2", 404). Map that module path to the
      vendored folder, _static/widgets/, next to this file, so the fonts load from the site itself.
   2. MathJax: the bundle typesets widget labels with MathJax 2's MathJax.Hub.Queue; the site ships MathJax 3.
      Give MathJax 3's object a Hub.Queue that calls typesetPromise.
   3. Alt text: a widgets.Image's `tooltip` is rendered as the img's title; copy it to alt. */
(function () {
  "use strict";
  var script = document.currentScript;
  var here = script ? script.src.slice(0, script.src.lastIndexOf("/") + 1) : null;
  if (here && window.require && window.require.config) {
    window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": here + "widgets", "@jupyter-widgets": here + "widgets" } });
  }

  function typeset(element) {
    var mj = window.MathJax;
    if (!mj || typeof mj.typesetPromise !== "function") return;
    var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
    ready.then(function () { return mj.typesetPromise(element ? [element] : undefined); })
         .catch(function (error) { console.warn("MathJax typeset failed:", error); });
  }
  function addHub(mj) {
    if (!mj || typeof mj !== "object" || !mj.version || mj.Hub) return;
    mj.Hub = {
      Queue: function () {
        for (var i = 0; i < arguments.length; i++) {
          var job = arguments[i];
          if (Array.isArray(job) && job[0] === "Typeset") typeset(job[2]);
          else if (typeof job === "function") job();
        }
      }
    };
  }
  // MathJax 3 replaces window.MathJax (the configuration object) with its own once it loads (deferred).
  var current = window.MathJax;
  try {
    Object.defineProperty(window, "MathJax", {
      configurable: true,
      get: function () { return current; },
      set: function (value) { current = value; addHub(value); }
    });
  } catch (e) { /* already non-configurable: fall back to the check below */ }
  addHub(current);
  document.addEventListener("DOMContentLoaded", function () { addHub(window.MathJax); });

  function describe(root) {
    var images = (root.querySelectorAll ? root : document).querySelectorAll("img.widget-image, .jupyter-widgets img");
    for (var i = 0; i < images.length; i++) {
      var img = images[i];
      var text = img.getAttribute("title");
      if (text && img.getAttribute("alt") !== text) img.setAttribute("alt", text);
    }
  }
  new MutationObserver(function (mutations) {
    for (var i = 0; i < mutations.length; i++) {
      var m = mutations[i];
      if (m.type === "attributes") describe(m.target.parentNode || document);
      else for (var j = 0; j < m.addedNodes.length; j++) if (m.addedNodes[j].nodeType === 1) describe(m.addedNodes[j].parentNode || document);
    }
  }).observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ["title"] });
})();
