// A stand-in for @jupyter-widgets/html-manager in the fixture sites of tests/test_check_site.py.
// Like the real manager, it renders each <script type="application/vnd.jupyter.widget-view+json"> a moment
// after the page loads, into a .widget-subarea holding the same DOM as a viz.frame_slider: a VBox with an
// IntSlider (noUiSlider markup: .widget-slider, a [role=slider] handle, a .widget-readout) and a Stack showing
// one widget Image. The view's JSON says {"label": ..., "frames": [image URLs], "linked": true|false}: a linked
// slider shows frame i when it is on i, an unlinked one moves but changes nothing (a dead control).
(function () {
  function render(script) {
    const view = JSON.parse(script.textContent);
    const max = view.frames.length - 1;
    const area = document.createElement("div");
    area.className = "widget-subarea";
    area.innerHTML =
      '<div class="lm-Widget jupyter-widgets widget-container widget-box widget-vbox">' +
      ' <div class="lm-Widget jupyter-widgets widget-inline-hbox widget-slider widget-hslider">' +
      '  <label class="widget-label"></label>' +
      '  <div class="slider-container" style="width:300px;display:inline-block">' +
      '   <div class="slider noUi-target noUi-horizontal"><div class="noUi-base" style="position:relative;' +
      '     width:300px;height:10px;background:#ccc"><div class="noUi-origin" style="position:absolute;left:0">' +
      '    <div class="noUi-handle" role="slider" tabindex="0" style="width:16px;height:16px;background:#333"' +
      '     aria-valuemin="0" aria-valuemax="' + max + '" aria-valuenow="0"></div></div></div></div></div>' +
      '  <div class="widget-readout">0</div></div>' +
      ' <div class="lm-Widget jupyter-widgets widget-container widget-box">' +
      '  <img class="jupyter-widgets widget-image" style="width:64px;height:64px"></div></div>';
    area.querySelector(".widget-label").textContent = view.label;
    const image = area.querySelector("img");
    image.src = view.frames[0];
    if (view.alt) image.alt = view.alt;
    script.parentNode.insertBefore(area, script.nextSibling);
    const base = area.querySelector(".noUi-base"), origin = area.querySelector(".noUi-origin");
    const handle = area.querySelector(".noUi-handle"), readout = area.querySelector(".widget-readout");
    let dragging = false;
    handle.addEventListener("mousedown", (event) => { dragging = true; event.preventDefault(); });
    document.addEventListener("mouseup", () => { dragging = false; });
    document.addEventListener("mousemove", (event) => {
      if (!dragging) return;
      const box = base.getBoundingClientRect();
      const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      const value = Math.round(fraction * max);
      handle.setAttribute("aria-valuenow", String(value));
      readout.textContent = String(value);
      origin.style.left = (100 * value / max) + "%";
      if (view.linked) image.src = view.frames[value];
    });
  }
  window.addEventListener("load", () => setTimeout(() => {
    document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').forEach(render);
  }, 300));
})();
