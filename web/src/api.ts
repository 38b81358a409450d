// The manager's REST API as the console calls it. The answers' types are generated from
// docs/formats/api.schema.json (api-types.ts), which the manager is tested against too.
import type {
  Agent,
  AgentList,
  AuditPage,
  Ban,
  BanList,
  CommandPage,
  CommandRow,
  CommandsQueued,
  DecoyList,
  DriftReport,
  EnrollmentToken,
  EventPage,
  Histogram,
  Role,
  Session,
  SinkList,
  SinkStatus,
  StoredEvent,
  TokenCreated,
  TokenList,
  User,
  UserList,
} from "./api-types";

export type {
  Agent,
  AgentStatus,
  AuditEntry,
  Ban,
  CommandRow,
  CommandState,
  Decoy,
  DecoyList,
  DriftDifference,
  DriftReport,
  EcsEvent,
  EnrollmentToken,
  EventPage,
  Histogram,
  Role,
  Session,
  SinkStatus,
  StoredEvent,
  User,
} from "./api-types";
/** Shape of the manager's error body: {"error": {"code", "message"}}. */
interface ErrorBody {
  error?: { code?: string; message?: string };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds from the Retry-After header; 0 when the manager sent none. */
    readonly retryAfterS = 0,
  ) {
    super(message);
  }
}

// sessionStorage, not localStorage: the session ends with the tab, and the
// session cookie itself stays HttpOnly; only the CSRF token is kept here.
const SESSION_KEY = "mamori.session";

export function currentSession(): Session | null {
  const stored = sessionStorage.getItem(SESSION_KEY);
  if (!stored) return null;
  try {
    return JSON.parse(stored) as Session;
  } catch {
    return null;
  }
}

type Method = "GET" | "POST" | "DELETE";

export async function request<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";

  const session = currentSession();
  if (method !== "GET" && session) headers["X-CSRF-Token"] = session.csrf_token;

  const init: RequestInit = {
    method,
    headers,
    credentials: "same-origin",
    // Agent status changes every few seconds; a cached answer is a wrong one.
    cache: "no-store",
  };
  if (body !== undefined) init.body = JSON.stringify(body);

  const response = await fetch(path, init);
  const text = await response.text();
  const payload: unknown = text ? JSON.parse(text) : null;

  if (!response.ok) {
    const error = (payload as ErrorBody | null)?.error;
    throw new ApiError(
      response.status,
      error?.code ?? "http",
      error?.message ?? response.statusText,
      Number(response.headers.get("Retry-After") ?? 0),
    );
  }
  return payload as T;
}

export async function login(name: string, password: string): Promise<Session> {
  const session = await request<Session>("POST", "/api/v1/login", { name, password });
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

export async function logout(): Promise<void> {
  try {
    await request<unknown>("POST", "/api/v1/logout");
  } finally {
    // Forget the session even if the manager is unreachable.
    sessionStorage.removeItem(SESSION_KEY);
  }
}

/** Drops a session the manager no longer accepts, without calling it. */
export function forgetSession(): void {
  sessionStorage.removeItem(SESSION_KEY);
}

export async function listAgents(): Promise<Agent[]> {
  const { agents } = await request<AgentList>("GET", "/api/v1/agents");
  return agents;
}


/** The filters of GET /api/v1/events and of the live stream (docs/manager.md). */
export interface EventFilter {
  agent?: string;
  group?: string;
  action?: string;
  path_prefix?: string;
  source_ip?: string;
  min_severity?: number;
  decoy?: string; // a decoy's events (GET /api/v1/decoys' decoy)
  since?: number; // ns since the epoch
}

export function eventQuery(filter: EventFilter): URLSearchParams {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(filter)) {
    if (value !== undefined && value !== "") query.set(key, String(value));
  }
  return query;
}


/** Newest first; `before` continues from a previous page's `next`. */
export async function listEvents(filter: EventFilter, before?: number, limit = 100): Promise<EventPage> {
  const query = eventQuery(filter);
  query.set("order", "newest");
  query.set("limit", String(limit));
  if (before !== undefined) query.set("before", String(before));
  return request<EventPage>("GET", `/api/v1/events?${query}`);
}

/** The live stream's address: the events stored from `after` on (absent: from now). */
export function liveEventsUrl(filter: EventFilter, after?: number): string {
  const query = eventQuery(filter);
  if (after !== undefined) query.set("after", String(after));
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/events/live?${query}`;
}


/** The fleet's active bans, oldest first; "past": lifted or expired ones, newest first. */
export async function listBans(state: "active" | "past" = "active"): Promise<Ban[]> {
  return (await request<BanList>("GET", state === "past" ? "/api/v1/bans?state=past" : "/api/v1/bans")).bans;
}

/** Each decoy's hits and false-positive rate over the last `days` days. */
export async function listDecoys(days = 30): Promise<DecoyList> {
  return request<DecoyList>("GET", `/api/v1/decoys?days=${days}`);
}

export async function addBan(address: string, ttlS: number, reason: string): Promise<void> {
  await request<unknown>("POST", "/api/v1/bans", { address, ttl_s: ttlS, reason });
}

export async function liftBan(address: string): Promise<void> {
  await request<unknown>("DELETE", `/api/v1/bans/${encodeURIComponent(address)}`);
}

/** Whether the signed-in user's role reaches `needed` (the API checks it anyway). */
export function mayAct(needed: "operator" | "admin"): boolean {
  const order = ["viewer", "operator", "admin"];
  const role = currentSession()?.role ?? "viewer";
  return order.indexOf(role) >= order.indexOf(needed);
}


export async function listTokens(): Promise<EnrollmentToken[]> {
  return (await request<TokenList>("GET", "/api/v1/tokens")).tokens;
}

/** The token's text is in this answer only: the manager keeps its hash. */
export async function createToken(group: string, uses?: number, expiresInS?: number): Promise<string> {
  const made = await request<TokenCreated>("POST", "/api/v1/tokens", {
    group,
    uses: uses ?? null,
    expires_in_s: expiresInS ?? null,
  });
  return made.token;
}

export async function revokeToken(id: number): Promise<void> {
  await request<unknown>("DELETE", `/api/v1/tokens/${id}`);
}


export async function listUsers(): Promise<User[]> {
  return (await request<UserList>("GET", "/api/v1/users")).users;
}

export async function addUser(name: string, password: string, role: Role): Promise<void> {
  await request<unknown>("POST", "/api/v1/users", { name, password, role });
}

export async function deleteUser(name: string): Promise<void> {
  await request<unknown>("DELETE", `/api/v1/users/${encodeURIComponent(name)}`);
}


/** Newest first; `before` continues from a previous page's `next`. */
export async function listAudit(before?: number): Promise<AuditPage> {
  const query = new URLSearchParams({ order: "newest", limit: "100" });
  if (before !== undefined) query.set("before", String(before));
  return request<AuditPage>("GET", `/api/v1/audit?${query}`);
}


/** Queues `command` for one agent; the id of its row. */
export async function sendCommand(agentKey: string, command: string, args: string[] = []): Promise<number> {
  const made = await request<CommandsQueued>("POST", "/api/v1/commands", {
    command,
    args,
    agent: agentKey,
    reason: "from the console",
  });
  return made.commands[0].id;
}

/** The commands with an id above `after`, oldest first. */
export async function listCommandsAfter(after: number): Promise<CommandRow[]> {
  return (await request<CommandPage>("GET", `/api/v1/commands?after=${after}&limit=1000`)).commands;
}

/** The event stored at `row` for `agentKey`, or null. */
export async function getEvent(agentKey: string, row: number): Promise<StoredEvent | null> {
  const query = new URLSearchParams({ agent: agentKey, after: String(row - 1), limit: "1" });
  const page = await request<EventPage>("GET", `/api/v1/events?${query}`);
  return page.events[0]?.row === row ? page.events[0] : null;
}

/** One agent's events in [sinceNs, untilNs), oldest first, at most `limit`. */
export async function eventsBetween(agentKey: string, sinceNs: number, untilNs: number, limit = 1000) {
  const query = new URLSearchParams({
    agent: agentKey,
    since: String(sinceNs),
    until: String(untilNs),
    limit: String(limit),
  });
  return (await request<EventPage>("GET", `/api/v1/events?${query}`)).events;
}

/** The answer of one command once it has one (polled), or throws after `timeoutMs`. */
export async function commandAnswer(agentKey: string, id: number, timeoutMs = 30000): Promise<CommandRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const query = new URLSearchParams({ agent: agentKey, after: String(id - 1), limit: "1" });
    const rows = (await request<CommandPage>("GET", `/api/v1/commands?${query}`)).commands;
    const row = rows.find((r) => r.id === id);
    if (row && (row.state === "ok" || row.state === "refused" || row.state === "failed")) return row;
    if (Date.now() > deadline) throw new Error("the agent did not answer in time");
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}


/** Compares the baselines of a group's nodes (every agent with `group` null). */
export async function compareGroup(group: string | null): Promise<DriftReport> {
  return request<DriftReport>("POST", "/api/v1/drift", group === null ? { all: true } : { group });
}


/** The events `filter` matches, counted in `buckets` buckets up to now. */
export async function eventHistogram(filter: EventFilter, buckets: number): Promise<Histogram> {
  const query = eventQuery(filter);
  query.set("buckets", String(buckets));
  return request<Histogram>("GET", `/api/v1/events/histogram?${query}`);
}


export async function listSinks(): Promise<SinkStatus[]> {
  return (await request<SinkList>("GET", "/api/v1/sinks")).sinks;
}

/** Has the manager send a test alert (sink-test) through every sink. */
export async function testSinks(): Promise<void> {
  await request<unknown>("POST", "/api/v1/sinks/test");
}
