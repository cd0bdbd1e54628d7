import { useEffect, useState } from "preact/hooks";
import { useRoute } from "./lib/hooks";
import { applyTheme, onSystemThemeChange, savePreference, storedPreference, type ThemePreference } from "./lib/theme";
import { ComparePage } from "./pages/Compare";
import { ExperimentsPage } from "./pages/Experiments";
import { RunPage } from "./pages/Run";
import { RunsPage } from "./pages/Runs";

const NEXT: Record<ThemePreference, ThemePreference> = { system: "light", light: "dark", dark: "system" };
const ICON: Record<ThemePreference, string> = { system: "◐", light: "☀", dark: "☾" };

function ThemeToggle() {
  const [pref, setPref] = useState<ThemePreference>(storedPreference);
  useEffect(() => {
    applyTheme(pref);
    return onSystemThemeChange(() => applyTheme(pref));
  }, [pref]);
  const next = NEXT[pref];
  return (
    <button
      id="theme-toggle"
      title={`Theme: ${pref} (click for ${next})`}
      aria-label={`Theme: ${pref}`}
      onClick={() => {
        savePreference(next);
        setPref(next);
      }}
    >
      {ICON[pref]} {pref}
    </button>
  );
}

export function App() {
  const route = useRoute();
  let page;
  switch (route.page) {
    case "experiments":
      page = <ExperimentsPage route={route} />;
      break;
    case "runs":
      page = <RunsPage route={route} />;
      break;
    case "run":
      page = <RunPage route={route} />;
      break;
    case "compare":
      page = <ComparePage route={route} />;
      break;
  }
  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="#/experiments">
          <svg width="18" height="18" viewBox="0 0 16 16" aria-hidden="true">
            <path d="M1 13 L5 7 L9 10 L15 2" stroke="var(--accent)" stroke-width="2.5" fill="none" />
          </svg>
          mltrail
        </a>
        <nav>
          <a href="#/experiments">Experiments</a>
        </nav>
        <ThemeToggle />
      </header>
      <main class="main">{page}</main>
    </div>
  );
}
