import { h, type Attrs } from "./dom";

/** Shows another page of the console without reloading (main.ts renders on popstate). */
export function go(path: string): void {
  history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** A link within the console: followed in place, or in a new tab with a modifier key. */
export function link(path: string, label: string, attrs: Attrs = {}): HTMLAnchorElement {
  const anchor = h("a", { ...attrs, href: path }, label);
  anchor.addEventListener("click", (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    go(path);
  });
  return anchor;
}
