// English is the reference table: its keys define MessageKey, and every other
// language must provide exactly those keys or tsc fails.
const en = {
  appName: "mamori",
  signIn: "Sign in",
  signOut: "Sign out",
  userName: "User name",
  password: "Password",
  signInFailed: "The user name or the password is wrong.",
  throttled: "Too many attempts: try again in {s} s.",
  fleet: "Fleet",
  agents: "Agents",
  name: "Name",
  host: "Host",
  group: "Group",
  status: "Status",
  lastSeen: "Last seen",
  version: "Version",
  roots: "Roots",
  events24h: "Events (24 h)",
  noAgents: "No agent has enrolled yet: create a token with `mamori manager token create`.",
  "status.online": "online",
  "status.lost": "lost",
  "status.retired": "retired",
  "status.enrolled": "enrolled",
  "status.unhealthy": "unhealthy",
  "status.stopped": "stopped",
  "status.revoked": "revoked",
  filter: "Filter",
  summary: "{online} of {all} online · {lost} lost",
  language: "Language",
  loadFailed: "The manager did not answer: {why}",
  signedInAs: "{name} ({role})",
  events: "Events",
  time: "Time",
  agent: "Agent",
  action: "Action",
  severity: "Severity",
  path: "Path",
  address: "Address",
  message: "Message",
  range: "Period",
  "range.1h": "last hour",
  "range.24h": "last 24 hours",
  "range.7d": "last 7 days",
  "range.all": "all",
  anyAgent: "every agent",
  anySeverity: "any severity",
  "severity.1": "info",
  "severity.3": "notice",
  "severity.5": "warning",
  "severity.7": "critical",
  older: "Older events",
  noEvents: "No event matches.",
  live: "live",
  reconnecting: "reconnecting…",
  shown: "{n} events shown, newest first",
  bans: "Bans",
  bansActive: "Banned across the fleet: {n}",
  noBans: "No address is banned across the fleet.",
  reason: "Reason",
  decidedBy: "Decided by",
  since: "Since",
  expires: "Expires",
  duration: "For",
  "ttl.1h": "1 hour",
  "ttl.24h": "24 hours",
  "ttl.7d": "7 days",
  "ttl.permanent": "permanent",
  manual: "an operator",
  addBan: "Ban",
  unban: "Unban",
  unbanAddress: "Unban {address}",
  confirmBan: "Ban {address} on every agent?",
  confirmUnban: "Lift the ban of {address} on every agent?",
  banned: "{address} is banned; the agents are being told.",
  unbanned: "The ban of {address} is lifted.",
  exportList: "Download as a list",
  exportNft: "Download as an nftables set",
  never: "never",
};

export type MessageKey = keyof typeof en;

const ja: Record<MessageKey, string> = {
  appName: "mamori",
  signIn: "サインイン",
  signOut: "サインアウト",
  userName: "ユーザー名",
  password: "パスワード",
  signInFailed: "ユーザー名またはパスワードが違います。",
  throttled: "試行が多すぎます。{s} 秒後にもう一度お試しください。",
  fleet: "フリート",
  agents: "エージェント",
  name: "名前",
  host: "ホスト",
  group: "グループ",
  status: "状態",
  lastSeen: "最終確認",
  version: "バージョン",
  roots: "ルート",
  events24h: "イベント (24 時間)",
  noAgents:
    "登録済みのエージェントはありません。`mamori manager token create` でトークンを作成してください。",
  "status.online": "オンライン",
  "status.lost": "喪失",
  "status.retired": "退役",
  "status.enrolled": "登録済み",
  "status.unhealthy": "異常",
  "status.stopped": "停止",
  "status.revoked": "失効",
  filter: "絞り込み",
  summary: "{all} 台中 {online} 台オンライン · {lost} 台喪失",
  language: "言語",
  loadFailed: "マネージャーが応答しません: {why}",
  signedInAs: "{name} ({role})",
  events: "イベント",
  time: "時刻",
  agent: "エージェント",
  action: "アクション",
  severity: "重大度",
  path: "パス",
  address: "アドレス",
  message: "メッセージ",
  range: "期間",
  "range.1h": "直近 1 時間",
  "range.24h": "直近 24 時間",
  "range.7d": "直近 7 日",
  "range.all": "すべて",
  anyAgent: "すべてのエージェント",
  anySeverity: "すべての重大度",
  "severity.1": "情報",
  "severity.3": "通知",
  "severity.5": "警告",
  "severity.7": "重大",
  older: "さらに古いイベント",
  noEvents: "該当するイベントはありません。",
  live: "ライブ",
  reconnecting: "再接続中…",
  shown: "{n} 件表示（新しい順）",
  bans: "遮断",
  bansActive: "フリート全体で遮断中: {n} 件",
  noBans: "フリート全体で遮断中のアドレスはありません。",
  reason: "理由",
  decidedBy: "判断元",
  since: "開始",
  expires: "期限",
  duration: "期間",
  "ttl.1h": "1 時間",
  "ttl.24h": "24 時間",
  "ttl.7d": "7 日",
  "ttl.permanent": "無期限",
  manual: "オペレーター",
  addBan: "遮断する",
  unban: "解除",
  unbanAddress: "{address} の遮断を解除",
  confirmBan: "{address} をすべてのエージェントで遮断しますか？",
  confirmUnban: "{address} の遮断をすべてのエージェントで解除しますか？",
  banned: "{address} を遮断しました。エージェントに通知中です。",
  unbanned: "{address} の遮断を解除しました。",
  exportList: "一覧をダウンロード",
  exportNft: "nftables セットとしてダウンロード",
  never: "なし",
};

export type Lang = "en" | "ja";

const messages: Record<Lang, Record<MessageKey, string>> = { en, ja };

const LANG_KEY = "mamori.lang";

export function isLang(value: string | null): value is Lang {
  return value === "en" || value === "ja";
}

/** The user's explicit choice wins; otherwise follow the browser. */
export function currentLang(): Lang {
  const chosen = localStorage.getItem(LANG_KEY);
  if (isLang(chosen)) return chosen;
  return navigator.language.toLowerCase().startsWith("ja") ? "ja" : "en";
}

export function setLang(lang: Lang): void {
  localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang;
}

/** Looks up `key` and fills its `{name}` placeholders; unknown ones become empty. */
export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  return messages[currentLang()][key].replace(/\{(\w+)\}/g, (_placeholder, name: string) =>
    String(params[name] ?? ""),
  );
}

/** Formats an instant in the viewer's zone, in the chosen language. */
export function formatDate(date: Date): string {
  // en-GB rather than en-US for the 24-hour clock.
  return new Intl.DateTimeFormat(currentLang() === "ja" ? "ja-JP" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "medium",
  }).format(date);
}

/** Formats a time in nanoseconds since the epoch; 0 means the agent never reported. */
export function formatTime(ns: number): string {
  if (!ns) return t("never");
  return formatDate(new Date(ns / 1e6));
}
