import { ApiError } from "./api";
import { h } from "./dom";

/** The line under a page's forms that says how the operator's last action went. */
export interface Outcome {
  node: HTMLElement;
  ok: (message: string) => void;
  /** The manager's refusal goes on the line; a lost session or a dead manager to `onFailure`. */
  report: (error: unknown) => void;
}

export function createOutcome(id: string, onFailure: (error: unknown) => void): Outcome {
  const node = h("p", { id, role: "status" });
  return {
    node,
    ok: (message) => {
      node.textContent = message;
      node.className = "";
    },
    report: (error) => {
      if (error instanceof ApiError && error.status !== 401) {
        node.textContent = error.message;
        node.className = "error";
        return;
      }
      onFailure(error);
    },
  };
}
