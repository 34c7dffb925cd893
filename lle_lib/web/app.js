// The photo page of `lle serve` (lle_lib/app.py). No framework and nothing from the internet: the page must work
// offline. The method list and the limits come from the server, embedded in the page as JSON (#config); each
// method's inputs are generated from its declared controls. Photos are uploaded one at a time, as jobs that the
// page polls for progress (POST /api/jobs, GET /api/jobs/<id>); a busy server (503) is retried after Retry-After.
// File names and messages are shown with textContent only, never as HTML.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("config").textContent);
  const limits = config.limits;
  const byName = new Map(config.methods.map((method) => [method.name, method]));
  const $ = (id) => document.getElementById(id);
  const el = {
    files: $("files"), drop: $("drop"), method: $("method"), summary: $("summary"), controls: $("controls"),
    run: $("run"), message: $("message"), photos: $("photos"), empty: $("empty"), figure: $("figure"),
    compare: $("compare"), before: $("before"), after: $("after"), handle: $("handle"), busy: $("busy"),
    busyProgress: $("busy-progress"), busyText: $("busy-text"), caption: $("caption"),
    download: $("download"), downloadAll: $("download-all"),
  };
  const POLL_MS = 300;
  const FAMILY = { "classical": "Classical", "zero-reference": "Zero-reference", "paired": "Paired",
                   "reference-guided": "Reference-guided" };
  const photos = [];          // {key, file, name, status, job, error, settings, generation, li, preview}
  let shown = null;
  let pumping = false;
  let nextKey = 0;

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const megabytes = (bytes) => (bytes / 1e6).toFixed(1);

  // ---- method and controls ----------------------------------------------------------------------------------

  function niceNumber(value) {
    return String(Number(Number(value).toPrecision(4)));
  }

  function numberControl(control) {
    const row = document.createElement("div");
    row.className = "control";
    const id = `control-${control.name}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = control.name.replaceAll("_", " ");
    const number = document.createElement("input");
    number.type = "number";
    number.id = id;
    number.name = control.name;
    number.step = control.kind === "int" ? "1" : "any";
    if (control.low !== null) number.min = control.low;
    if (control.high !== null) number.max = control.high;
    if (control.default !== null) number.value = control.default;
    else number.placeholder = "default";
    const parts = [label];
    if (control.low !== null && control.high !== null) {
      const range = document.createElement("input");
      range.type = "range";
      range.min = control.low;
      range.max = control.high;
      range.step = control.kind === "int" ? "1" : "any";
      range.value = control.default !== null ? control.default : (control.low + control.high) / 2;
      range.setAttribute("aria-label", `${control.name} slider`);
      range.addEventListener("input", () => { number.value = niceNumber(range.value); settingsChanged(); });
      number.addEventListener("input", () => { if (number.value !== "") range.value = number.value; });
      parts.push(range);
    }
    number.addEventListener("input", settingsChanged);
    parts.push(number);
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.textContent = `${control.help ? control.help + "; " : ""}${control.describe.replace(/^[^:]*: /, "")}`;
    row.append(...parts, hint);
    return row;
  }

  function imageControl(control) {
    const row = document.createElement("div");
    row.className = "control image-control";
    const id = `control-${control.name}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = `${control.name.replaceAll("_", " ")}${control.optional ? " (optional)" : ""}`;
    const input = document.createElement("input");
    input.type = "file";
    input.id = id;
    input.name = control.name;
    input.accept = "image/*," + limits.extensions.join(",");
    input.addEventListener("change", settingsChanged);
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.textContent = control.help || control.describe;
    row.append(label, input, hint);
    return row;
  }

  function renderControls() {
    const method = byName.get(el.method.value);
    const legend = document.createElement("legend");
    legend.textContent = "Settings";
    el.controls.replaceChildren(legend);
    el.summary.textContent = method ? `${FAMILY[method.family] || method.family}: ${method.summary}` : "";
    if (!method) return;
    if (!method.controls.length) {
      const none = document.createElement("p");
      none.className = "hint";
      none.textContent = "This method has no settings.";
      el.controls.append(none);
    }
    for (const control of method.controls) {
      el.controls.append(control.kind === "image" ? imageControl(control) : numberControl(control));
    }
  }

  function currentSettings() {
    const settings = { method: el.method.value, fields: [] };
    for (const input of el.controls.querySelectorAll("input[name]")) {
      if (input.type === "file") {
        if (input.files.length) settings.fields.push([input.name, input.files[0]]);
      } else if (input.value !== "") {
        settings.fields.push([input.name, input.value]);
      }
    }
    return settings;
  }

  function settingsKey(settings) {
    const parts = settings.fields.map(([name, value]) =>
      [name, value instanceof File ? `${value.name}/${value.size}/${value.lastModified}` : String(value)]);
    return JSON.stringify([settings.method, parts]);
  }

  // Offer to enhance again only when some photo was sent with other settings than those shown now.
  function settingsChanged() {
    const key = settingsKey(currentSettings());
    el.run.disabled = !photos.some((photo) => !photo.refused && settingsKey(photo.settings) !== key);
  }

  // ---- messages -----------------------------------------------------------------------------------------------

  function showMessage(text) {
    const line = document.createElement("p");
    line.textContent = text;
    el.message.append(line);
    el.message.hidden = false;
  }

  function clearMessages() {
    el.message.replaceChildren();
    el.message.hidden = true;
  }

  // ---- photos ------------------------------------------------------------------------------------------------

  function addFiles(files) {
    const settings = currentSettings();
    for (const file of files) {
      const photo = { key: nextKey++, file, name: file.name || "photo", status: "waiting", job: null, error: "",
                      settings, generation: 0, preview: URL.createObjectURL(file) };
      photo.li = listItem(photo);
      el.photos.append(photo.li);
      photos.push(photo);
      if (file.size > limits.max_upload_bytes) {
        photo.refused = true;
        fail(photo, `${photo.name}: the file is ${megabytes(file.size)} MB; this server accepts up to ` +
                    `${limits.max_upload_mb} MB per photo`);
      } else {
        update(photo);
      }
      if (!shown) show(photo);
    }
    settingsChanged();
    pump();
  }

  function listItem(photo) {
    const li = document.createElement("li");
    li.className = "photo";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "photo-button";
    const name = document.createElement("span");
    name.className = "photo-name";
    name.textContent = photo.name;
    const status = document.createElement("span");
    status.className = "photo-status";
    const bar = document.createElement("progress");
    bar.max = 1;
    button.append(name, status, bar);
    button.addEventListener("click", () => show(photo));
    li.append(button);
    return li;
  }

  function statusText(photo) {
    const job = photo.job;
    switch (photo.status) {
      case "waiting": return "waiting to upload";
      case "uploading": return "uploading…";
      case "busy": return photo.error;
      case "queued": return job.ahead ? `queued: ${job.ahead} photo(s) ahead` : "queued";
      case "running": return job.progress > 0 ? `enhancing… ${Math.round(job.progress * 100)}%` : "enhancing…";
      case "done": return `done in ${job.seconds} s · ${job.width}×${job.height}`;
      case "failed": return photo.error.startsWith(`${photo.name}: `) ?
        photo.error.slice(photo.name.length + 2) : photo.error;
      default: return photo.status;
    }
  }

  function update(photo) {
    const li = photo.li;
    li.dataset.state = photo.status;
    li.querySelector(".photo-status").textContent = statusText(photo);
    const bar = li.querySelector("progress");
    bar.hidden = photo.status === "done" || photo.status === "failed";
    if (photo.status === "running" && photo.job.progress > 0) bar.value = photo.job.progress;
    else if (photo.status === "done") bar.value = 1;
    else bar.removeAttribute("value");       // indeterminate: waiting, uploading, queued, a first tile running
    if (photo === shown) show(photo);
    updateDownloadAll();
  }

  function fail(photo, message) {
    photo.status = "failed";
    photo.error = message;
    update(photo);
    showMessage(message);
  }

  function updateDownloadAll() {
    const done = photos.filter((photo) => photo.status === "done");
    el.downloadAll.hidden = done.length === 0;
    if (done.length) {
      el.downloadAll.href = "/api/results.zip?" + done.map((photo) => "id=" + encodeURIComponent(photo.job.id))
        .join("&");
      el.downloadAll.textContent = `Download all (${done.length}) as ZIP`;
    }
  }

  // ---- talking to the server ---------------------------------------------------------------------------------

  async function readJson(response) {
    try {
      return await response.json();
    } catch (error) {
      if (response.status === 413) {
        return { error: `the upload is larger than this server's limit of ${limits.max_upload_mb} MB per photo` };
      }
      return { error: `the server answered ${response.status} ${response.statusText}` };
    }
  }

  function formFor(photo) {
    const form = new FormData();
    form.append("method", photo.settings.method);
    for (const [name, value] of photo.settings.fields) form.append(name, value);
    form.append("image", photo.file, photo.name);
    return form;
  }

  async function upload(photo, generation) {
    for (;;) {
      photo.status = "uploading";
      update(photo);
      const response = await fetch("/api/jobs", { method: "POST", body: formFor(photo) });
      if (photo.generation !== generation) return null;
      if (response.status !== 503) return response;
      const wait = Math.max(1, Number(response.headers.get("Retry-After")) || 5);
      photo.status = "busy";
      photo.error = `the server is busy; trying again in ${wait} s`;
      update(photo);
      await sleep(wait * 1000);
      if (photo.generation !== generation) return null;
    }
  }

  async function process(photo) {
    const generation = photo.generation;
    let response;
    try {
      response = await upload(photo, generation);
      if (!response) return;
      let body = await readJson(response);
      if (photo.generation !== generation) return;
      if (!response.ok) return fail(photo, body.error || `the server answered ${response.status}`);
      for (;;) {
        photo.job = body;
        photo.status = body.state;
        if (body.state === "failed") return fail(photo, `${photo.name}: ${body.error}`);
        update(photo);
        if (body.state === "done") return;
        await sleep(POLL_MS);
        response = await fetch(body.url, { cache: "no-store" });
        const next = await readJson(response);
        if (photo.generation !== generation) return;
        if (!response.ok) return fail(photo, `${photo.name}: ${next.error || response.status}`);
        body = next;
      }
    } catch (error) {
      if (photo.generation === generation) fail(photo, `${photo.name}: the server could not be reached (${error})`);
    }
  }

  async function pump() {
    if (pumping) return;
    pumping = true;
    try {
      for (let photo; (photo = photos.find((p) => p.status === "waiting"));) await process(photo);
    } finally {
      pumping = false;
    }
  }

  function runAgain() {
    clearMessages();
    const settings = currentSettings();
    for (const photo of photos) {
      if (photo.refused) continue;
      photo.generation += 1;
      photo.settings = settings;
      photo.status = "waiting";
      photo.job = null;
      photo.error = "";
      update(photo);
    }
    settingsChanged();
    pump();
  }

  // ---- the before/after view -----------------------------------------------------------------------------------

  const emptyText = el.empty.textContent;

  function show(photo) {
    shown = photo;
    for (const item of photos) item.li.classList.toggle("current", item === photo);
    const failed = photo.status === "failed";
    el.empty.hidden = !failed;
    el.empty.classList.toggle("failed", failed);
    el.empty.textContent = failed ? photo.error : emptyText;
    el.figure.hidden = failed;
    if (failed) {
      el.download.hidden = true;
      return;
    }
    const done = photo.status === "done";
    const before = done ? photo.job.input : photo.preview;
    if (el.before.getAttribute("src") !== before) {
      el.before.style.width = "";
      el.compare.classList.remove("no-preview");
      el.before.src = before;
    }
    if (done) {
      if (el.after.getAttribute("src") !== photo.job.result) el.after.src = photo.job.result;
      el.after.hidden = false;
      el.download.href = photo.job.download;
      el.download.setAttribute("download", photo.job.filename);
    } else {
      el.after.hidden = true;
      el.after.removeAttribute("src");
    }
    el.download.hidden = !done;
    el.compare.classList.toggle("done", done);
    el.busy.hidden = done;
    el.busyText.textContent = statusText(photo);
    const value = photo.li.querySelector("progress").getAttribute("value");
    if (value === null) el.busyProgress.removeAttribute("value");
    else el.busyProgress.value = Number(value);
    const method = byName.get(photo.settings.method);
    el.caption.textContent = `${photo.name} · ${method ? method.title : photo.settings.method}`;
  }

  // Small photos are shown larger and large ones smaller: as wide as the viewer allows, at most 72% of the window
  // high. The output image covers the input exactly (CSS), so only the input is sized.
  function fitImage() {
    const image = el.before;
    if (!image.naturalWidth) return;
    const room = el.figure.parentElement.clientWidth;
    const scale = Math.min(4, room / image.naturalWidth, (0.72 * window.innerHeight) / image.naturalHeight);
    image.style.width = `${Math.floor(image.naturalWidth * scale)}px`;
  }
  el.before.addEventListener("load", () => { el.compare.classList.remove("no-preview"); fitImage(); });
  // A format this browser cannot show (TIFF, say) has no preview until the server's decoded input arrives.
  el.before.addEventListener("error", () => el.compare.classList.add("no-preview"));
  window.addEventListener("resize", fitImage);

  let split = 50;
  function setSplit(percent) {
    split = Math.min(100, Math.max(0, percent));
    el.compare.style.setProperty("--split", `${split}%`);
    el.handle.setAttribute("aria-valuenow", String(Math.round(split)));
    el.handle.setAttribute("aria-valuetext", `${Math.round(split)}% before, ${Math.round(100 - split)}% after`);
  }

  function splitFromPointer(event) {
    const box = el.compare.getBoundingClientRect();
    setSplit(((event.clientX - box.left) / box.width) * 100);
  }

  let dragging = false;
  el.compare.addEventListener("pointerdown", (event) => {
    dragging = true;
    el.compare.setPointerCapture(event.pointerId);
    splitFromPointer(event);
    el.handle.focus({ preventScroll: true });
    event.preventDefault();
  });
  el.compare.addEventListener("pointermove", (event) => { if (dragging) splitFromPointer(event); });
  for (const type of ["pointerup", "pointercancel"]) el.compare.addEventListener(type, () => { dragging = false; });
  el.handle.addEventListener("keydown", (event) => {
    const step = event.shiftKey ? 10 : 2;
    const moves = { ArrowLeft: split - step, ArrowDown: split - step, ArrowRight: split + step,
                    ArrowUp: split + step, Home: 0, End: 100 };
    if (event.key in moves) {
      setSplit(moves[event.key]);
      event.preventDefault();
    }
  });

  // ---- files in --------------------------------------------------------------------------------------------------

  el.files.addEventListener("change", () => {
    addFiles([...el.files.files]);
    el.files.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    window.addEventListener(type, (event) => {
      event.preventDefault();
      el.drop.classList.add("over");
    });
  }
  window.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) el.drop.classList.remove("over");
  });
  window.addEventListener("drop", (event) => {      // anywhere on the page, so a missed drop is not opened
    event.preventDefault();
    el.drop.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) addFiles([...event.dataTransfer.files]);
  });

  el.method.addEventListener("change", () => { renderControls(); settingsChanged(); });
  el.run.addEventListener("click", runAgain);
  renderControls();
  setSplit(50);
})();
