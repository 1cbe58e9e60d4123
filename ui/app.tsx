/** `aloft ui` in the browser: the runs list at `/`, a run at `/runs/<id>` (a deep link). */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { RunsPage } from "./runs.tsx";
import { RunPage } from "./run.tsx";
import { navigate } from "./nav.ts";
import "./app.css";

function currentPath(): string {
  return location.pathname;
}

function App() {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const on = () => setPath(currentPath());
    addEventListener("popstate", on);
    return () => removeEventListener("popstate", on);
  }, []);
  const m = /^\/runs\/([^/]+)\/?$/.exec(path);
  return (
    <>
      <header class="top">
        <a
          class="brand"
          href="/"
          onClick={(e) => {
            e.preventDefault();
            navigate("/");
          }}
        >
          Aloft
        </a>
        <span class="where">{m ? `run ${decodeURIComponent(m[1]!)}` : "runs"}</span>
      </header>
      <main>{m ? <RunPage id={decodeURIComponent(m[1]!)} key={m[1]} /> : <RunsPage />}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
