// Generated from docs/formats/api.schema.json by web/tools/schema-types.mjs: do not edit,
// change the schema and run `node tools/schema-types.mjs` in web/.

export interface Session {
  name: string;
  role: Role;
  csrf_token: string;
}

export type Role = "viewer" | "operator" | "admin";

export type AgentStatus = "enrolled" | "online" | "unhealthy" | "lost" | "stopped" | "retired" | "revoked";

/** A root as the agent's hello described it. */
export interface AgentRoot {
  path: string;
  mode: string;
  [field: string]: unknown;
}

export interface Agent {
  agent_key: string;
  name: string;
  hostname: string;
  group: string;
  status: AgentStatus;
  status_since_ns: number;
  last_seen_ns: number;
  enrolled_at_ns: number;
  version: string;
  roots: AgentRoot[];
  /** the catalog's seal as of the last hello */
  baseline_root_hash: string;
  events_24h: number;
}

export interface AgentList {
  agents: Agent[];
  count: number;
}

/** An event as its agent sent it (docs/formats/events.md); the fields the console reads. */
export interface EcsEvent {
  "@timestamp"?: string;
  message?: string;
  event: {
    id: string;
    action?: string;
    severity?: number;
    kind?: string;
    [field: string]: unknown;
  };
  file?: {
    path?: string;
    [field: string]: unknown;
  };
  source?: {
    ip?: string;
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

export interface StoredEvent {
  /** arrival order */
  row: number;
  agent_key: string;
  event: EcsEvent;
}

export interface EventPage {
  events: StoredEvent[];
  count: number;
  /** the next page's after (or before, newest first); absent on the last */
  next?: number;
}

export interface Histogram {
  since: number;
  width_ns: number;
  /** false: a filter on an agent, a path or an address matched more than 100,000 events and the counts are of the first 100,000 */
  complete: boolean;
  counts: number[];
  max_severity: number[];
}

export interface Ban {
  id: number;
  /** an address or a CIDR prefix */
  address: string;
  /** null: permanent */
  expires_at_ns: number | null;
  reason: string;
  /** the deciding agent's agent_key, or manager */
  origin: string;
  created_at_ns: number;
  pushed: boolean;
  /** when an operator lifted it; null: not lifted */
  lifted_at_ns: number | null;
}

export interface BanList {
  bans: Ban[];
  count: number;
}

export interface Decoy {
  /** its rule id (decoy-TOKEN, decoy-url-..., ...), or file:PATH for an opened decoy that names no token */
  decoy: string;
  /** the request of its newest hit (url.original), or the opened file's path; may be empty */
  url: string;
  /** agent_keys it was hit or opened on, newest first, at most 16 */
  agents: string[];
  /** access-log hits (ip-banned by its rule) in the window */
  hits: number;
  /** distinct source addresses of its hits and credential uses */
  addresses: number;
  /** decoy-opened events */
  opened: number;
  /** decoy-credential-used events */
  credential_uses: number;
  /** hits whose address an operator unbanned while the hit's ban lasted */
  false_positives: number;
  /** false_positives / hits; null without hits */
  false_positive_rate: number | null;
  /** its oldest event in the window (@timestamp, ns) */
  first_ns: number;
  /** its newest event in the window */
  last_ns: number;
  latest: {
    agent_key: string;
    /** the newest event's row: the console's /incident/AGENT_KEY/ROW */
    row: number;
  };
}

export interface DecoyList {
  /** the window's start (ns since the epoch) */
  since: number;
  /** its end (now) */
  until: number;
  days: number;
  /** false: more than 100,000 decoy events or operator unbans in the window; the newest counted, the figures are floors */
  complete: boolean;
  /** newest activity first */
  decoys: Decoy[];
  count: number;
}

export interface EnrollmentToken {
  id: number;
  group: string;
  /** null: unlimited */
  uses_left: number | null;
  /** null: never */
  expires_at_ns: number | null;
  created_at_ns: number;
  used: number;
  revoked: boolean;
}

export interface TokenList {
  tokens: EnrollmentToken[];
  count: number;
}

/** The token's text is in this answer only: the manager keeps its hash. */
export interface TokenCreated {
  id: number;
  token: string;
  group: string;
}

export interface User {
  name: string;
  role: Role;
  created_at_ns: number;
}

export interface UserList {
  users: User[];
  count: number;
}

export interface AuditEntry {
  id: number;
  at_ns: number;
  /** user:NAME or apitoken:ID */
  actor: string;
  address: string;
  action: string;
  target: string;
  result: string;
}

export interface AuditPage {
  audit: AuditEntry[];
  count: number;
  next?: number;
}

export type CommandState = "pending" | "sent" | "ok" | "refused" | "failed";

/** The agent's answer (docs/formats/control.md); error when it refused or failed. */
export interface CommandAnswer {
  error?: {
    code?: string;
    message?: string;
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

export interface CommandRow {
  id: number;
  command_id: string;
  agent_key: string;
  /** the control-protocol request sent */
  request: unknown;
  state: CommandState;
  created_at_ns: number;
  sent_at_ns: number | null;
  answered_at_ns: number | null;
  answer: CommandAnswer | null;
}

export interface CommandPage {
  commands: CommandRow[];
  count: number;
  next?: number;
}

export interface CommandsQueued {
  commands: {
    id: number;
    agent_key: string;
  }[];
  count: number;
}

export interface SinkStatus {
  name: string;
  type: "syslog" | "smtp" | "webhook";
  delivered: number;
  filtered: number;
  failures: number;
  skipped_lines: number;
  pending: number;
  missed: number;
  next_sequence: number;
  failing: boolean;
  last_error: string;
}

export interface SinkList {
  sinks: SinkStatus[];
}

export interface DriftDifference {
  path: string;
  /** the bytes of a name that is not UTF-8 */
  path_hex?: string;
  kind: "added" | "missing" | "changed";
  type: string;
}

export interface DriftNode {
  agent_key: string;
  name: string;
  digest: string;
  entries: number;
  differences: DriftDifference[];
  truncated: boolean;
  error: string;
}

export interface NamedAgent {
  agent_key: string;
  name: string;
}

export interface DriftReport {
  drift: boolean;
  roots: {
    root: string;
    reference: {
      digest: string;
      agents: NamedAgent[];
    };
    drifted: DriftNode[];
  }[];
  unanswered: {
    agent_key: string;
    name: string;
    why: string;
  }[];
  offline: {
    agent_key: string;
    name: string;
    status: AgentStatus;
  }[];
}

export interface Error {
  error: {
    code: string;
    message: string;
  };
}
