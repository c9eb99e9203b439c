// The dashboard's own behaviour (htmx does the rest): errors said out loud, live rows flashed,
// and Supabase's sign-in links (tokens in the URL fragment) handed to the server.
(function () {
  "use strict";
  function toast(text) {
    var box = document.getElementById("toast");
    if (!box) return;
    box.textContent = text;
    setTimeout(function () { if (box.textContent === text) box.textContent = ""; }, 6000);
  }
  document.addEventListener("htmx:responseError", function (e) {
    var status = e.detail.xhr.status;
    if (status === 503) toast("The dashboard cannot reach its database right now; nothing was lost. Try again in a few seconds.");
    else if (status === 404) toast("Not found: it may have been removed, or it is not yours to see.");
    else if (status === 400) toast("That request was refused: " + (e.detail.xhr.responseText.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim().slice(0, 200)));
    else if (status === 403) toast("Not allowed.");
    else toast("Something went wrong (" + status + "). Try again.");
  });
  // a form with data-confirm asks first (the Team page's Remove)
  document.addEventListener("submit", function (e) {
    var text = e.target && e.target.dataset ? e.target.dataset.confirm : null;
    if (text && !window.confirm(text)) e.preventDefault();
  });
  // A membership row's controls name only their action (hx-post="workflow"): the row holds its
  // URL once (data-url), so fifty rows do not repeat /p/<practice>/memberships/<id>/ six times.
  document.addEventListener("htmx:configRequest", function (e) {
    var path = e.detail.path;
    if (!path || path.charAt(0) === "/" || path.indexOf(":") >= 0) return;
    var row = e.detail.elt.closest("[data-url]");
    if (row) e.detail.path = row.dataset.url + "/" + path;
  });
  document.addEventListener("htmx:sendError", function () {
    toast("The dashboard is not reachable. Check the connection and try again.");
  });
  // A live re-read of a row waits for nothing: when one of the row's own edits is still in
  // flight, its answer is the newer row, so the re-read is skipped (else it could land first and
  // the edit's answer would go to a row no longer on the page). The echo of an edit that has
  // landed is answered 204 by the server (the row's ?v= version), so its "Saved" stays.
  document.addEventListener("htmx:confirm", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.tagName === "TR" && elt.dataset.url && elt.querySelector(".htmx-request")) {
      e.preventDefault();
    }
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.tagName === "TR") {
      elt.classList.add("flash");
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("fragment-form");
    if (!form || !location.hash) return;
    var params = new URLSearchParams(location.hash.slice(1));
    if (!params.get("access_token")) return;
    form.access_token.value = params.get("access_token");
    form.refresh_token.value = params.get("refresh_token") || "";
    form.type.value = params.get("type") || "";
    history.replaceState(null, "", location.pathname);
    form.submit();
  });
})();
