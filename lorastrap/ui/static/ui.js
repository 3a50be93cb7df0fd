// lorastrap ui: progressive enhancement. Every page reads and every form works without this file;
// with it, curation runs from the keyboard and a job's progress streams into the page.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function toast(message, bad) {
    const el = $("#toast");
    el.textContent = message;
    el.className = "show" + (bad ? " bad" : "");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.className = ""; }, bad ? 5000 : 1800);
  }

  async function post(url, fields) {
    const body = fields instanceof FormData ? fields : new URLSearchParams(fields);
    const res = await fetch(url, { method: "POST", body, credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf } });
    let data = {};
    try { data = await res.json(); } catch (e) { data = { error: res.status + " " + res.statusText }; }
    if (!res.ok || data.ok === false) throw new Error(data.error || ("request failed: " + res.status));
    return data;
  }

  // ---- the coverage bar ---------------------------------------------------------------------
  function updateCoverage(cov) {
    const box = $("#coverage");
    if (!box || !cov) return;
    for (const key of ["total", "threshold", "curated"]) {
      const el = $('[data-cov="' + key + '"]', box);
      if (el) el.textContent = cov[key];
    }
    $('[data-cov="need-text"]', box).textContent = cov.need ? cov.need + " more needed" : "enough";
    const svg = $("svg.bar", box);
    const mark = $("rect.mark", svg);
    mark.setAttribute("x", Math.max(cov.mark - 0.4, 0));
    $$("rect.seg", svg).forEach((r) => r.remove());
    const views = Object.keys(cov.views);
    let x = 0;
    for (const seg of cov.segments) {
      const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      r.setAttribute("class", "seg v" + (views.indexOf(seg.view) % 9));
      r.setAttribute("data-view", seg.view);
      r.setAttribute("x", x); r.setAttribute("y", 0);
      r.setAttribute("width", seg.percent); r.setAttribute("height", 6);
      const t = document.createElementNS("http://www.w3.org/2000/svg", "title");
      t.textContent = seg.view + ": " + seg.count;
      r.appendChild(t);
      svg.insertBefore(r, mark);
      x += seg.percent;
    }
    $$(".legend li", box).forEach((li) => {
      const n = cov.views[li.dataset.view] || 0;
      $("b", li).textContent = n;
      li.classList.toggle("none", !n);
    });
  }

  // ---- curation -----------------------------------------------------------------------------
  function setupCuration(root) {
    const slug = root.dataset.slug, round = root.dataset.round;
    const cards = $$(".cand", root);
    const undoStack = [];
    let current = Math.max(0, cards.findIndex((c) => c.dataset.state === "open"));
    const typing = (t) => t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable);

    function focusCard(i) {
      if (!cards.length) return;
      current = Math.max(0, Math.min(cards.length - 1, i));
      cards.forEach((c) => c.classList.remove("focused"));
      const card = cards[current];
      card.classList.add("focused");
      card.focus({ preventScroll: true });
      card.scrollIntoView({ block: "nearest" });
    }

    function counts() {
      for (const s of ["open", "kept", "rejected"]) {
        const el = $("#n-" + s);
        if (el) el.textContent = cards.filter((c) => c.dataset.state === s).length;
      }
    }

    function show(card, state) {
      card.dataset.state = state;
      card.classList.remove("open", "kept", "rejected");
      card.classList.add(state);
      $(".state-word", card).textContent = state;
      counts();
    }

    async function move(card, state, remember) {
      const before = card.dataset.state;
      if (before === state) return false;
      const name = card.dataset.name;
      const url = "/c/" + encodeURIComponent(slug) + "/" + ({ kept: "keep", rejected: "reject" }[state] || "undo");
      try {
        const data = await post(url, { round, name, to: state });
        show(card, state);
        updateCoverage(data.coverage);
        if (remember) undoStack.push({ card, before: data.before || before });
        return true;
      } catch (err) {
        toast(err.message, true);
        return false;
      }
    }

    function vertical(step) {
      const here = cards[current].getBoundingClientRect();
      const cx = here.left + here.width / 2;
      const rows = cards.map((c, i) => ({ i, r: c.getBoundingClientRect() }))
        .filter((o) => (step > 0 ? o.r.top > here.top + 5 : o.r.top < here.top - 5));
      if (!rows.length) return current;
      const rowTop = step > 0 ? Math.min(...rows.map((o) => o.r.top)) : Math.max(...rows.map((o) => o.r.top));
      const row = rows.filter((o) => Math.abs(o.r.top - rowTop) < 5);
      row.sort((a, b) => Math.abs(a.r.left + a.r.width / 2 - cx) - Math.abs(b.r.left + b.r.width / 2 - cx));
      return row[0].i;
    }

    async function onKey(key) {
      if (key === "ArrowRight") focusCard(current + 1);
      else if (key === "ArrowLeft") focusCard(current - 1);
      else if (key === "ArrowDown") focusCard(vertical(1));
      else if (key === "ArrowUp") focusCard(vertical(-1));
      else if (key === "k") { if (await move(cards[current], "kept", true)) focusCard(current + 1); }
      else if (key === "x") { if (await move(cards[current], "rejected", true)) focusCard(current + 1); }
      else if (key === "u") {
        const last = undoStack.pop();
        if (!last) { toast("nothing to undo"); return; }
        if (await move(last.card, last.before, false)) { focusCard(cards.indexOf(last.card)); toast("undone"); }
      }
    }

    // keys are handled one after the other: K K K keeps three cards even while requests are in flight
    let queue = Promise.resolve();
    document.addEventListener("keydown", (ev) => {
      if (typing(ev.target) || ev.ctrlKey || ev.metaKey || ev.altKey || !cards.length) return;
      const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
      if (!["ArrowRight", "ArrowLeft", "ArrowDown", "ArrowUp", "k", "x", "u"].includes(key)) return;
      ev.preventDefault();
      queue = queue.then(() => onKey(key));
    });

    cards.forEach((card, i) => {
      card.addEventListener("click", (ev) => {
        if (ev.target.closest("a.pic") && !(ev.ctrlKey || ev.metaKey || ev.shiftKey)) ev.preventDefault();
        focusCard(i);
      });
      $$("form", card).forEach((form) => form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const to = form.action.endsWith("/keep") ? "kept" : form.action.endsWith("/reject") ? "rejected" : "open";
        focusCard(i);
        await move(card, to, true);
      }));
    });
    focusCard(current);
  }

  // ---- job progress -------------------------------------------------------------------------
  function renderJob(view) {
    const panel = $("#job-panel");
    panel.classList.remove("hidden");
    const set = (field, value) => { const el = $('[data-job-field="' + field + '"]', panel); if (el) el.textContent = value; };
    set("id", view.id); set("status", view.status); set("phase", view.phase || "");
    set("done", view.done == null ? "–" : view.done); set("total", view.total || "–");
    set("loss", view.loss == null ? "–" : Number(view.loss).toFixed(4));
    set("eta", view.eta_s == null ? "–" : Math.round(view.eta_s) + " s");
    set("candidates", view.candidates);
    set("error", (view.status === "failed" || view.status === "cancelled") && view.error ? view.error : "");
    const bar = $("#job-progress");
    if (view.percent != null) bar.value = view.percent; else if (view.finished) bar.value = 100; else bar.removeAttribute("value");
    const msgs = $('[data-job-field="messages"]', panel);
    msgs.replaceChildren(...view.messages.map((m) => { const li = document.createElement("li"); li.textContent = m; return li; }));
    const samples = $("#job-samples");
    samples.replaceChildren(...view.samples.map((rel) => {
      const a = document.createElement("a"); a.className = "pic grid"; a.href = "/file/" + encodeURI(rel);
      const img = document.createElement("img"); img.src = "/file/" + encodeURI(rel); img.alt = "training samples";
      a.appendChild(img); return a;
    }));
    const cancel = $("form.cancel", panel);
    if (cancel) {
      cancel.action = "/jobs/" + view.id + "/cancel";
      cancel.classList.toggle("hidden", view.finished);
    }
    const run = $("#run-form button");
    if (run) run.disabled = !view.finished;
    $("#job").dataset.finished = view.finished ? "true" : "false";
  }

  function followJob(id) {
    let done = false;
    const finish = (view) => {
      if (done) return;
      done = true;
      toast("job " + view.id + " " + view.status, view.status !== "done");
      if (view.status === "done") setTimeout(() => window.location.reload(), 1200);
    };
    const poll = async () => {
      while (!done) {
        try {
          const res = await fetch("/jobs/" + id, { headers: { Accept: "application/json" }, credentials: "same-origin" });
          const view = await res.json();
          renderJob(view);
          if (view.finished) finish(view);
        } catch (e) { /* the server restarts: try again */ }
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    if (!window.EventSource) { poll(); return; }
    const es = new EventSource("/jobs/" + id + "/events");
    es.onmessage = (ev) => {
      const view = JSON.parse(ev.data);
      renderJob(view);
      if (view.finished) { es.close(); finish(view); }
    };
    es.onerror = () => { if (!done) { es.close(); poll(); } };
  }

  function setupJob(section) {
    const form = $("#run-form");
    if (form) form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const data = await post(form.action, new FormData(form));
        toast("queued job " + data.job);
        $("#run-form button").disabled = true;
        renderJob({ id: data.job, status: "queued", phase: "queued", messages: [], samples: [], candidates: 0, finished: false });
        followJob(data.job);
      } catch (err) { toast(err.message, true); }
    });
    const cancel = $("form.cancel", section);
    if (cancel) cancel.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { await post(cancel.action, new FormData(cancel)); toast("cancelling…"); } catch (err) { toast(err.message, true); }
    });
    if (section.dataset.job && section.dataset.finished === "false") followJob(section.dataset.job);
  }

  // ---- small forms: save in place -------------------------------------------------------------
  function setupInPlace(selector, said, update) {
    $$(selector).forEach((form) => form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { update(form, await post(form.action, new FormData(form))); toast(said); } catch (err) { toast(err.message, true); }
    }));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const cands = $("#candidates");
    if (cands) setupCuration(cands);
    const job = $("#job");
    if (job) setupJob(job);
    setupInPlace(".tag-form", "tags saved", (form, data) => { $('input[name="tags"]', form).value = data.tags.join(", "); });
    // an emptied caption falls back to the policy's: reload to show it
    setupInPlace(".caption-form", "caption saved", (form, data) => {
      if (data.caption === null) window.location.reload(); else $("textarea", form).value = data.caption;
    });
  });
})();
