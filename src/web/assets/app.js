// vibedev ui: live fragments over server-sent events, confirmation before destructive actions,
// and log following. No framework, no build step.
(function () {
  "use strict";
  var conn = document.getElementById("conn");
  var open = 0;
  function connection(delta) {
    open += delta;
    if (!conn) return;
    conn.textContent = open > 0 ? "live" : "reconnecting…";
    conn.classList.toggle("offline", open <= 0);
  }

  // Keeps keyboard focus on the same control when its fragment is replaced.
  function focusKey(el) {
    return el && (el.id || el.getAttribute("data-focus-key"));
  }
  function refocus(root, key) {
    if (!key) return;
    var el = document.getElementById(key) || root.querySelector('[data-focus-key="' + key + '"]');
    if (el) el.focus();
  }

  // <section data-live="/live/...">: replaced by each `fragment` event.
  function live(el) {
    var source = new EventSource(el.getAttribute("data-live"));
    var up = false;
    source.onopen = function () { if (!up) { up = true; connection(1); } };
    source.onerror = function () { if (up) { up = false; connection(-1); } };
    source.addEventListener("fragment", function (e) {
      var active = document.activeElement;
      var key = el.contains(active) ? focusKey(active) : null;
      el.innerHTML = e.data;
      refocus(el, key);
      el.dispatchEvent(new CustomEvent("live:update", { bubbles: true }));
    });
  }

  // <pre data-append="/live/..." data-max="5000">: `append` events add lines at the end;
  // it keeps to the bottom while "follow" is checked.
  function append(el) {
    var max = parseInt(el.getAttribute("data-max") || "5000", 10);
    var follow = document.getElementById(el.getAttribute("data-follow") || "follow");
    var source = new EventSource(el.getAttribute("data-append"));
    var up = false;
    source.onopen = function () { if (!up) { up = true; connection(1); } };
    source.onerror = function () { if (up) { up = false; connection(-1); } };
    source.addEventListener("append", function (e) {
      el.insertAdjacentHTML("beforeend", e.data);
      var extra = el.children.length - max;
      for (var i = 0; i < extra; i++) el.removeChild(el.firstElementChild);
      if (!follow || follow.checked) el.scrollTop = el.scrollHeight;
    });
    el.addEventListener("scroll", function () {
      // Scrolling up stops following; back at the bottom follows again.
      if (!follow) return;
      var atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 4;
      follow.checked = atBottom;
    });
  }

  // <form data-confirm="Really?">: asks before submitting.
  document.addEventListener("submit", function (e) {
    var message = e.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) e.preventDefault();
  });

  // <select data-autosubmit>: changing it submits its form.
  document.addEventListener("change", function (e) {
    if (e.target.hasAttribute && e.target.hasAttribute("data-autosubmit") && e.target.form) e.target.form.submit();
  });

  document.querySelectorAll("[data-live]").forEach(live);
  document.querySelectorAll("[data-append]").forEach(append);
})();
