// Fetch runs by id: with experiment ids, one `run_id IN (...)` search per few hundred runs; without, one
// get-run per run (a handful at a time).
import { getRun, searchRuns } from "./api";
import { quoteValue } from "./columns";
import type { Run } from "./types";

const IDS_PER_SEARCH = 300;

export async function fetchRunsByIds(experimentIds: string[] | null, ids: string[]): Promise<Run[]> {
  if (!ids.length) return [];
  if (!experimentIds?.length) {
    const out: Run[] = [];
    const queue = [...ids];
    await Promise.all(
      Array.from({ length: Math.min(6, queue.length) }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) out.push(await getRun(id));
      }),
    );
    const order = new Map(ids.map((id, i) => [id, i]));
    return out.sort((a, b) => order.get(a.info.run_id)! - order.get(b.info.run_id)!);
  }
  const pages = [];
  for (let i = 0; i < ids.length; i += IDS_PER_SEARCH) {
    const filter = `attributes.run_id IN (${ids.slice(i, i + IDS_PER_SEARCH).map(quoteValue).join(", ")})`;
    pages.push(searchRuns({ experimentIds, filter, viewType: "ALL" }, undefined, IDS_PER_SEARCH));
  }
  return (await Promise.all(pages)).flatMap((p) => p.items);
}
