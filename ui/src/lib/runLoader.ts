// Loads the runs of one search page by page (page tokens are sequential), as far as the table has
// scrolled. A jump far down the list asks for larger pages so 100,000 runs are reached in few requests.
import { searchRuns, type RunSearch } from "./api";
import type { Run } from "./types";

export const PAGE_SIZE = 200;
export const JUMP_PAGE_SIZE = 5000;

/** Page size for the next request when `loaded` rows are present and row `wanted` must be reached. */
export function pageSizeFor(loaded: number, wanted: number): number {
  const gap = wanted - loaded;
  return gap > PAGE_SIZE * 4 ? Math.min(JUMP_PAGE_SIZE, Math.ceil((gap + PAGE_SIZE) / PAGE_SIZE) * PAGE_SIZE) : PAGE_SIZE;
}

export class RunLoader {
  rows: Run[] = [];
  done = false;
  error: Error | null = null;
  private token: string | undefined;
  private want = 0;
  private busy = false;
  private cancelled = false;

  constructor(
    readonly search: RunSearch,
    private readonly onChange: () => void,
  ) {}

  /** Make sure rows up to index `upto` are (being) loaded. */
  ensure(upto: number): void {
    this.want = Math.max(this.want, upto + 1);
    void this.pump();
  }

  cancel(): void {
    this.cancelled = true;
  }

  /** Replace loaded runs by fresh copies (live updates), keeping order and position. */
  update(fresh: Run[]): boolean {
    const byId = new Map(fresh.map((r) => [r.info.run_id, r]));
    let changed = false;
    this.rows = this.rows.map((r) => {
      const f = byId.get(r.info.run_id);
      if (f && JSON.stringify(f) !== JSON.stringify(r)) {
        changed = true;
        return f;
      }
      return r;
    });
    if (changed) this.onChange();
    return changed;
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.cancelled && !this.done && !this.error && this.rows.length < this.want) {
        const size = pageSizeFor(this.rows.length, this.want);
        try {
          const page = await searchRuns(this.search, this.token, size);
          if (this.cancelled) return;
          this.rows = this.rows.concat(page.items);
          this.token = page.nextPageToken;
          this.done = !page.nextPageToken;
        } catch (e) {
          this.error = e as Error;
        }
        this.onChange();
      }
    } finally {
      this.busy = false;
    }
  }
}
