// Content-Security-Policy violations are kept for the session, so tests (and
// a curious admin, in the console) can see that none happened.
document.addEventListener("securitypolicyviolation", (event) => {
  const seen = JSON.parse(sessionStorage.getItem("csp-violations") || "[]");
  seen.push(`${event.violatedDirective} ${event.blockedURI}`);
  sessionStorage.setItem("csp-violations", JSON.stringify(seen));
});

// Copy buttons: <button data-copy="element-id">. Loaded as a file so the
// Content-Security-Policy can forbid inline scripts.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});
