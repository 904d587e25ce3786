// Light, dark or the system's choice; remembered in localStorage (no cookie, nothing sent).
import { useEffect, useState } from "preact/hooks";

type Theme = "system" | "light" | "dark";
const KEY = "orchestrator-theme";
const NEXT: Record<Theme, Theme> = { system: "dark", dark: "light", light: "system" };

function stored(): Theme {
  const v = localStorage.getItem(KEY);
  return v === "light" || v === "dark" ? v : "system";
}

function applyTheme(t: Theme): void {
  if (t === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}

applyTheme(stored());

export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(stored);
  useEffect(() => {
    applyTheme(theme);
    if (theme === "system") localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, theme);
  }, [theme]);
  return (
    <button type="button" class="secondary" onClick={() => setTheme(NEXT[theme])} aria-label={`Theme: ${theme}. Switch to ${NEXT[theme]}.`}>
      Theme: {theme}
    </button>
  );
}
