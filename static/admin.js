// Content-Security-Policy violations are kept for the session, so tests (and
// a curious admin, in the console) can see that none happened.
document.addEventListener("securitypolicyviolation", (event) => {
  const seen = JSON.parse(sessionStorage.getItem("csp-violations") || "[]");
  seen.push(`${event.violatedDirective} ${event.blockedURI}`);
  sessionStorage.setItem("csp-violations", JSON.stringify(seen));
});

// Scripts run: copy buttons show (admin.css hides them until then, so without
// JavaScript the text is there to select, with no button that does nothing).
document.documentElement.classList.add("js");

// Copy buttons: <button data-copy="element-id">. Loaded as a file so the
// Content-Security-Policy can forbid inline scripts. Over plain HTTP to a host
// other than localhost browsers offer no clipboard API: the text is selected
// and copied the old way, and if that fails too it stays selected for Ctrl+C.
function selectText(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

function flash(button, text) {
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  button.textContent = text;
  setTimeout(() => { button.textContent = label; }, 1500);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.textContent.trim()).then(
      () => flash(button, "Copied"),
      () => { selectText(source); flash(button, "Press Ctrl+C"); });
    return;
  }
  selectText(source);
  let copied = false;
  try { copied = document.execCommand("copy"); } catch (_) { copied = false; }
  flash(button, copied ? "Copied" : "Press Ctrl+C");
});

// htmx leaves 4xx and 5xx answers unswapped (the htmx-config in layout.html
// marks them as errors, 422 form errors excepted): without this they would be
// dropped silently. The server's own message goes in a banner at the top of
// the page; textContent only, so nothing in it is ever run or parsed as markup.
function serverMessage(xhr) {
  const body = xhr.responseText || "";
  try {
    const parsed = JSON.parse(body);
    if (parsed && typeof parsed.error === "string") return parsed.error;
  } catch (_) { /* not JSON: an HTML error page, or nothing */ }
  const page = new DOMParser().parseFromString(body, "text/html");
  const alert = page.querySelector("[role=alert]");
  return (alert && alert.textContent.trim()) || xhr.statusText || "the request failed";
}

function showError(text) {
  let banner = document.getElementById("request-error");
  if (!banner) {
    banner = document.createElement("p");
    banner.id = "request-error";
    banner.className = "error-banner";
    banner.setAttribute("role", "alert");
    const main = document.querySelector("main") || document.body;
    main.prepend(banner);
  }
  banner.textContent = text;
  banner.scrollIntoView({ block: "nearest" });
}

document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  showError(`${xhr.status}: ${serverMessage(xhr)}`);
});

document.addEventListener("htmx:sendError", () => {
  showError("The gate could not be reached; check the connection and try again.");
});

document.addEventListener("htmx:beforeRequest", () => {
  const banner = document.getElementById("request-error");
  if (banner) banner.remove();
});

// A table or chart too wide for a phone scrolls inside itself (admin.css);
// it is made focusable so the arrow keys can scroll it too.
function focusableWideTables() {
  for (const table of document.querySelectorAll("table, .chart-wrap")) {
    if (table.scrollWidth > table.clientWidth + 1) {
      table.setAttribute("tabindex", "0");
    } else if (table.getAttribute("tabindex") === "0") {
      table.removeAttribute("tabindex");
    }
  }
}
document.addEventListener("DOMContentLoaded", focusableWideTables);
document.addEventListener("htmx:afterSettle", focusableWideTables);
window.addEventListener("resize", focusableWideTables);
