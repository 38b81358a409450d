import type { EcsEvent } from "./api";

/** A dotted ECS field ("process.parent.pid") of an event, or undefined. */
export function field(e: EcsEvent, path: string): unknown {
  let at: unknown = e;
  for (const key of path.split(".")) {
    if (typeof at !== "object" || at === null) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/** The same field as text; "" when absent. */
export function text(e: EcsEvent, path: string): string {
  const v = field(e, path);
  return v === undefined || v === null ? "" : String(v);
}
