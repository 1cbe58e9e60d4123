/** Moves within the app without reloading the page (app.tsx listens for popstate). */
export function navigate(path: string): void {
  history.pushState(null, "", path);
  dispatchEvent(new PopStateEvent("popstate"));
}
