// The dashboard's shell: session check, navigation, theme, and the page for the current route.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, type Session } from "./api.js";
import { connect, reconnect, signedOut, useLive, type Connection } from "./live.js";
import { Login } from "./pages/login.js";
import { PlayPage, PlaysPage } from "./pages/plays.js";
import { RunPage } from "./pages/run.js";
import { RunsPage } from "./pages/runs.js";
import { ServicesPage } from "./pages/services.js";
import { SubmitPage } from "./pages/submit.js";
import { useRoute, type Route } from "./router.js";
import { ThemeToggle } from "./theme.js";
import "./style.css";

const NAV = [
  ["runs", "Runs"],
  ["plays", "Plays"],
  ["services", "Services"],
  ["submit", "Submit"],
] as const;

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  "signed-out": "Signed out",
};

function Page({ route, session }: { route: Route; session: Session }) {
  const [top = "runs", a, b] = route.parts;
  if (top === "runs" && a && b) return <RunPage kind={a} name={b} />;
  if (top === "plays" && a) return <PlayPage name={a} />;
  if (top === "plays") return <PlaysPage />;
  if (top === "services") return <ServicesPage slotsPerService={session.slotsPerService} />;
  if (top === "submit") return <SubmitPage query={route.query} />;
  return <RunsPage query={route.query} />;
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const route = useRoute();
  const live = useLive();
  const current = route.parts[0] ?? "runs";
  useEffect(() => connect(), []);
  // After a navigation (not on load), focus moves to the new page's heading, so keyboard and
  // screen-reader users land on it; on load the skip link stays the first stop.
  const loaded = useRef(false);
  useEffect(() => {
    if (loaded.current) document.querySelector<HTMLElement>("main h1")?.focus();
    loaded.current = true;
  }, [route.parts.join("/")]);
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">orchestrator</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([id, label]) => (
              <li key={id}>
                <a href={`#/${id}`} aria-current={current === id ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class={`conn conn-${live.connection}`} role="status" aria-live="polite">
          {CONNECTION_TEXT[live.connection]}
        </span>
        <span class="who" title={`namespace ${session.namespace}`}>
          {session.principal.name} · {session.namespace}
        </span>
        <ThemeToggle />
        <button type="button" class="secondary" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} session={session} />
      </main>
    </>
  );
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const live = useLive();
  const load = () =>
    api.session().then(setSession, (e: unknown) => {
      if (e instanceof ApiError && e.status === 401) setSession(null);
      else setError(e);
    });
  useEffect(() => void load(), []);
  useEffect(() => {
    if (live.connection === "signed-out" && session) setSession(null);
  }, [live.connection]);
  if (error)
    return (
      <main class="center">
        <p role="alert">The orchestrator could not be reached: {String((error as Error).message)}. Reload to retry.</p>
      </main>
    );
  if (session === undefined)
    return (
      <main class="center">
        <p>Loading…</p>
      </main>
    );
  if (session === null) {
    return (
      <Login
        onSignedIn={() => {
          reconnect();
          void load();
        }}
      />
    );
  }
  return (
    <Shell
      session={session}
      onSignOut={() => {
        void api.logout().finally(() => {
          signedOut();
          setSession(null);
        });
      }}
    />
  );
}

render(<App />, document.getElementById("app")!);
