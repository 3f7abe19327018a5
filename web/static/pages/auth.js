// Login and register: plain forms with labels; errors are announced (role="alert").

import { api } from "../api.js";
import { errorText, h } from "../dom.js";

function field(labelText, props) {
  const id = `f-${props.name}`;
  return h("div.field", h("label", { for: id }, labelText), h("input", { id, ...props }));
}

function authCard(title, intro, form, footer) {
  return h("section.auth",
    h("div.auth-card",
      h("p.brand-line", h("img", { src: document.querySelector("link[rel=icon]").href, alt: "", width: 40, height: 40 }),
        "Ghost Pirates"),
      h("h1", title), h("p.muted", intro), form, h("p.auth-foot", footer)));
}

async function submitting(form, work) {
  const button = form.querySelector("button[type=submit]");
  const error = form.querySelector(".form-error");
  error.textContent = "";
  button.disabled = true;
  try {
    await work();
  } catch (err) {
    error.textContent = err.status === 401 ? "Invalid credentials" : errorText(err);
  } finally {
    button.disabled = false;
  }
}

export function login(main, { navigate, query }) {
  const form = h("form.stack", { novalidate: true },
    field("Email", { name: "email", type: "email", autocomplete: "username", required: true, autofocus: true }),
    field("Password", { name: "password", type: "password", autocomplete: "current-password", required: true }),
    h("p.form-error", { role: "alert" }),
    h("button.primary", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    submitting(form, async () => {
      await api.login(String(data.get("email")).trim(), String(data.get("password")));
      const next = query.get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/dashboard", { replace: true });
    });
  });
  main.append(authCard("Sign in", "Run and watch your AI teams.", form,
    ["No account yet? ", h("a", { href: "/register" }, "Create a company")]));
  form.querySelector("input").focus();
}

export function register(main, { navigate }) {
  const form = h("form.stack", { novalidate: true },
    field("Company name", { name: "company_name", required: true, autocomplete: "organization" }),
    field("Your name", { name: "full_name", required: true, autocomplete: "name" }),
    field("Email", { name: "email", type: "email", required: true, autocomplete: "email" }),
    field("Password", { name: "password", type: "password", required: true, minlength: 8,
      autocomplete: "new-password", "aria-describedby": "pw-hint" }),
    h("p.hint", { id: "pw-hint" }, "At least 8 characters."),
    h("p.form-error", { role: "alert" }),
    h("button.primary", { type: "submit" }, "Create account"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    submitting(form, async () => {
      await api.register(data);
      navigate("/dashboard", { replace: true });
    });
  });
  main.append(authCard("Create your company", "You will be its admin.", form,
    ["Already registered? ", h("a", { href: "/login" }, "Sign in")]));
  form.querySelector("input").focus();
}
