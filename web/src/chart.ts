// The events page's chart: events over time, one bar per bucket, coloured by the worst
// severity in it. Drawn as SVG from the manager's counts; no charting library.
import type { Histogram } from "./api";
import { h } from "./dom";
import { formatDate, severityBand, t } from "./i18n";

const SVG = "http://www.w3.org/2000/svg";
const BAR_WIDTH = 10;
const HEIGHT = 60;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  return element;
}

export interface EventChart {
  node: HTMLElement;
  show: (histogram: Histogram) => void;
}

export function createEventChart(): EventChart {
  const picture = svg("svg", { role: "img", preserveAspectRatio: "none", id: "events-chart-bars" });
  const caption = h("figcaption", { id: "events-chart-caption" });
  const from = h("span", {});
  const to = h("span", {});
  const node = h(
    "figure",
    { class: "chart", id: "events-chart" },
    picture,
    h("div", { class: "chart-axis" }, from, to),
    caption,
  );

  function show(histogram: Histogram): void {
    const n = histogram.counts.length;
    const peak = Math.max(1, ...histogram.counts);
    const total = histogram.counts.reduce((sum, c) => sum + c, 0);
    const at = (i: number) => new Date((histogram.since + i * histogram.width_ns) / 1e6);
    picture.setAttribute("viewBox", `0 0 ${n * BAR_WIDTH} ${HEIGHT}`);
    picture.replaceChildren(
      ...histogram.counts.flatMap((count, i) => {
        if (!count) return [];
        // At least a sliver for one event among thousands: it is there.
        const height = Math.max(1.5, (count / peak) * HEIGHT);
        const bar = svg("rect", {
          x: i * BAR_WIDTH + 1,
          y: HEIGHT - height,
          width: BAR_WIDTH - 2,
          height,
          class: `sev-${severityBand(histogram.max_severity[i])}`,
          "data-count": count,
        });
        const title = svg("title", {});
        title.textContent = t("chart.bar", { time: formatDate(at(i)), n: count });
        bar.append(title);
        return [bar];
      }),
    );
    from.textContent = formatDate(at(0));
    to.textContent = formatDate(at(n));
    const busiest = histogram.counts.indexOf(Math.max(...histogram.counts));
    let text = total
      ? t("chart.summary", { total, peak: histogram.counts[busiest], time: formatDate(at(busiest)) })
      : t("chart.empty");
    if (!histogram.complete) text += ` ${t("chart.partial")}`;
    caption.textContent = text;
    picture.setAttribute("aria-label", text);
  }

  return { node, show };
}
