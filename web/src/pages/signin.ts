import { ApiError, login, type Session } from "../api";
import { h } from "../dom";
import { t } from "../i18n";

function describeFailure(error: unknown): string {
  if (error instanceof ApiError && error.status === 429) {
    return t("throttled", { s: error.retryAfterS });
  }
  if (error instanceof ApiError && error.status === 401) return t("signInFailed");
  return t("loadFailed", { why: String(error) });
}

export function createSignInPage(onSignedIn: (session: Session) => void): HTMLElement {
  const name = h("input", { id: "signin-name", name: "name", autocomplete: "username", required: true });
  const password = h("input", {
    id: "signin-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const error = h("p", { class: "error", role: "alert", "aria-live": "assertive" });
  const submit = h("button", { type: "submit" }, t("signIn"));

  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, t("appName")),
    h("label", { for: "signin-name" }, t("userName")),
    name,
    h("label", { for: "signin-password" }, t("password")),
    password,
    submit,
    error,
  );

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    // Disabled while the request runs so a double click cannot count as two attempts.
    submit.disabled = true;
    error.textContent = "";
    login(name.value, password.value)
      .then(onSignedIn)
      .catch((failure: unknown) => {
        error.textContent = describeFailure(failure);
        password.value = "";
        password.focus();
      })
      .finally(() => {
        submit.disabled = false;
      });
  });

  // The form is not in the document yet; focus once the caller has appended it.
  queueMicrotask(() => name.focus());

  return h("main", { class: "centered" }, form);
}
