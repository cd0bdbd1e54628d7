// Light/dark theme: follows the system unless the user picked one (kept in localStorage; `?theme=dark`
// in the page URL also works, for links and screenshots).
export type ThemePreference = "system" | "light" | "dark";
const STORAGE_KEY = "mltrail.theme";

export function storedPreference(): ThemePreference {
  const fromUrl = new URLSearchParams(window.location.search).get("theme");
  const v = fromUrl ?? localStorage.getItem(STORAGE_KEY);
  return v === "light" || v === "dark" ? v : "system";
}

export function resolveTheme(pref: ThemePreference, systemDark: boolean): "light" | "dark" {
  return pref === "system" ? (systemDark ? "dark" : "light") : pref;
}

const media = () => window.matchMedia("(prefers-color-scheme: dark)");

export function applyTheme(pref: ThemePreference): "light" | "dark" {
  const theme = resolveTheme(pref, media().matches);
  document.documentElement.dataset.theme = theme;
  return theme;
}

export function savePreference(pref: ThemePreference): void {
  if (pref === "system") localStorage.removeItem(STORAGE_KEY);
  else localStorage.setItem(STORAGE_KEY, pref);
}

export function onSystemThemeChange(cb: () => void): () => void {
  const m = media();
  m.addEventListener("change", cb);
  return () => m.removeEventListener("change", cb);
}

/** Chart palette: distinct, readable on both backgrounds. */
export const PALETTE = [
  "#2f7de1", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#e67700", "#5c940d",
  "#d6336c", "#1971c2", "#862e9c", "#087f5b", "#f08c00", "#364fc7", "#a61e4d", "#495057",
];

export function colorFor(index: number): string {
  return PALETTE[index % PALETTE.length];
}
