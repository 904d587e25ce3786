// Sign-in: the token is checked by the server and kept in an HttpOnly cookie; this page never
// stores it.
import { useState } from "preact/hooks";
import { ApiError, api } from "../api.js";
import { ThemeToggle } from "../theme.js";

export function Login({ onSignedIn }: { onSignedIn: () => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await api.login(token);
      setToken("");
      onSignedIn();
    } catch (err) {
      setError(err instanceof ApiError ? err.problem.detail : `Sign-in failed: ${String(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="center login">
      <form class="card" onSubmit={submit} aria-labelledby="login-title" noValidate>
        <h1 id="login-title">Sign in to orchestrator</h1>
        <p>
          Use an API token (ORCHESTRATOR_API_TOKENS) or a Kubernetes ServiceAccount token the API accepts. It is kept in an HttpOnly cookie
          for this browser session.
        </p>
        <label for="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="current-password"
          required
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          aria-invalid={error ? "true" : undefined}
          aria-describedby={error ? "login-error" : undefined}
        />
        {error && (
          <p id="login-error" class="note error" role="alert">
            {error}
          </p>
        )}
        <div class="actions">
          <button type="submit" disabled={busy}>
            {busy ? "Signing in…" : "Sign in"}
          </button>
          <ThemeToggle />
        </div>
      </form>
    </main>
  );
}
