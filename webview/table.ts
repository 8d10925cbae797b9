import type { LayerReport } from '../src/core/types';
import { formatCompact, formatInt, formatNum, formatPct, formatShape, shapeElements } from '../src/protocol/format';
import { flaggedChannels, primaryWeight } from '../src/protocol/layers';
import { h } from './dom';

export type ColumnKey =
  | 'index' | 'name' | 'op' | 'shape' | 'params' | 'macs' | 'mean' | 'std' | 'min' | 'max' | 'zero' | 'nearZero';

export interface SortState {
  key: ColumnKey;
  dir: 'asc' | 'desc';
}

interface Column {
  key: ColumnKey;
  label: string;
  /** accessible name of the header when the label is terse */
  aria?: string;
  numeric: boolean;
  value: (l: LayerReport) => number | string | null;
  cell: (l: LayerReport) => string;
}

const stat = (l: LayerReport) => primaryWeight(l)?.stats ?? null;

const COLUMNS: readonly Column[] = [
  { key: 'index', label: '#', aria: 'Index', numeric: true, value: (l) => l.index, cell: (l) => String(l.index) },
  { key: 'name', label: 'Name', numeric: false, value: (l) => l.name, cell: (l) => l.name },
  { key: 'op', label: 'Op', numeric: false, value: (l) => l.op, cell: (l) => l.op },
  {
    key: 'shape', label: 'Output shape', numeric: false,
    value: (l) => shapeElements(l.output_shape), cell: (l) => formatShape(l.output_shape),
  },
  { key: 'params', label: 'Params', numeric: true, value: (l) => l.params, cell: (l) => formatInt(l.params) },
  { key: 'macs', label: 'MACs', numeric: true, value: (l) => l.macs, cell: (l) => formatCompact(l.macs) },
  { key: 'mean', label: 'Mean', aria: 'Weight mean', numeric: true, value: (l) => stat(l)?.mean ?? null, cell: (l) => formatNum(stat(l)?.mean) },
  { key: 'std', label: 'Std', aria: 'Weight standard deviation', numeric: true, value: (l) => stat(l)?.std ?? null, cell: (l) => formatNum(stat(l)?.std) },
  { key: 'min', label: 'Min', aria: 'Weight minimum', numeric: true, value: (l) => stat(l)?.min ?? null, cell: (l) => formatNum(stat(l)?.min) },
  { key: 'max', label: 'Max', aria: 'Weight maximum', numeric: true, value: (l) => stat(l)?.max ?? null, cell: (l) => formatNum(stat(l)?.max) },
  {
    key: 'zero', label: 'Zero', aria: 'Zero weights percent', numeric: true,
    value: (l) => stat(l)?.zero_fraction ?? null, cell: (l) => formatPct(stat(l)?.zero_fraction),
  },
  {
    key: 'nearZero', label: 'Near-zero', aria: 'Near-zero weights percent', numeric: true,
    value: (l) => stat(l)?.near_zero_fraction ?? null, cell: (l) => formatPct(stat(l)?.near_zero_fraction),
  },
];

export const COLUMN_KEYS: ReadonlySet<string> = new Set(COLUMNS.map((c) => c.key));

function compare(a: number | string | null, b: number | string | null): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

export interface LayerTableEvents {
  onSelect(layer: LayerReport | null): void;
  onSort(sort: SortState): void;
}

/**
 * The layer table: a plain <table> (fast for thousands of rows; vscode-table renders a shadow DOM per cell).
 * Rows are built once per report and only re-ordered when sorting. Keyboard: rows use a roving tabindex;
 * Up/Down/Home/End/PageUp/PageDown move, Enter or Space selects.
 */
export class LayerTable {
  readonly element: HTMLTableElement;
  private readonly tbody: HTMLTableSectionElement;
  private readonly headers = new Map<ColumnKey, HTMLTableCellElement>();
  private readonly rows = new Map<string, HTMLTableRowElement>();
  private layers: LayerReport[] = [];
  private byName = new Map<string, LayerReport>();
  private order: HTMLTableRowElement[] = [];
  private selected: string | null = null;

  constructor(
    private sort: SortState,
    private readonly events: LayerTableEvents,
  ) {
    const headRow = h('tr');
    for (const col of COLUMNS) {
      const button = h(
        'button',
        { class: 'sort', attrs: { type: 'button', 'aria-label': col.aria ? `Sort by ${col.aria}` : `Sort by ${col.label}` } },
        col.label,
        h('span', { class: 'sort-indicator', attrs: { 'aria-hidden': 'true' } }),
      );
      button.addEventListener('click', () => this.toggleSort(col.key));
      const th = h('th', { class: col.numeric ? 'num' : '', attrs: { scope: 'col', 'data-key': col.key } }, button);
      this.headers.set(col.key, th);
      headRow.appendChild(th);
    }
    this.tbody = h('tbody');
    this.element = h(
      'table',
      { class: 'layers', testid: 'layer-table', attrs: { role: 'grid', 'aria-label': 'Layers', 'aria-readonly': 'true' } },
      h('thead', null, headRow),
      this.tbody,
    );
    this.tbody.addEventListener('click', (e) => {
      const row = this.rowOf(e.target);
      if (row) this.selectRow(row, false);
    });
    this.tbody.addEventListener('keydown', (e) => this.onKey(e));
    this.updateSortIndicators();
  }

  get selectedName(): string | null {
    return this.selected;
  }

  setLayers(layers: LayerReport[]): void {
    this.layers = layers;
    this.byName = new Map(layers.map((l) => [l.name, l]));
    this.rows.clear();
    for (const layer of layers) this.rows.set(layer.name, this.buildRow(layer));
    if (this.selected !== null && !this.byName.has(this.selected)) this.selected = null;
    this.applySort();
    this.syncSelection();
  }

  getLayer(name: string): LayerReport | undefined {
    return this.byName.get(name);
  }

  /** Select a layer by name; returns false when the model has no such layer. */
  select(name: string | null, opts: { scroll?: boolean; focus?: boolean; notify?: boolean } = {}): boolean {
    if (name !== null && !this.byName.has(name)) return false;
    this.selected = name;
    this.syncSelection();
    const row = name !== null ? this.rows.get(name) : undefined;
    if (row && opts.scroll) row.scrollIntoView({ block: 'center' });
    if (row && opts.focus) row.focus({ preventScroll: !opts.scroll });
    if (opts.notify !== false) this.events.onSelect(name !== null ? (this.byName.get(name) ?? null) : null);
    return true;
  }

  private buildRow(layer: LayerReport): HTMLTableRowElement {
    const tr = document.createElement('tr');
    tr.setAttribute('data-testid', 'layer-row');
    tr.setAttribute('data-layer', layer.name);
    tr.tabIndex = -1;
    tr.setAttribute('aria-selected', 'false');
    const flagged = flaggedChannels(layer);
    if (layer.batchnorm) tr.classList.add('bn');
    for (const col of COLUMNS) {
      const td = document.createElement('td');
      if (col.numeric) td.className = 'num';
      td.textContent = col.cell(layer);
      if (col.key === 'name') td.title = layer.name;
      if (col.key === 'op') {
        if (layer.native_op !== layer.op) td.title = layer.native_op;
        const bn = layer.batchnorm;
        if (bn) {
          const parts: string[] = [];
          if (bn.gamma) parts.push(`γ [${formatNum(bn.gamma.min)}, ${formatNum(bn.gamma.max)}]`);
          if (bn.running_var) parts.push(`var [${formatNum(bn.running_var.min)}, ${formatNum(bn.running_var.max)}]`);
          if (parts.length) td.appendChild(h('div', { class: 'sub' }, parts.join(' · ')));
          if (flagged.length) {
            const shown = flagged.slice(0, 32).join(', ') + (flagged.length > 32 ? ', …' : '');
            td.appendChild(
              h(
                'span',
                { class: 'badge warning', title: `Channels with ~0 variance or ~0 γ: ${shown}` },
                `${flagged.length} flagged`,
              ),
            );
          }
        }
      }
      tr.appendChild(td);
    }
    return tr;
  }

  private toggleSort(key: ColumnKey): void {
    const numeric = COLUMNS.find((c) => c.key === key)?.numeric ?? false;
    this.sort =
      this.sort.key === key
        ? { key, dir: this.sort.dir === 'asc' ? 'desc' : 'asc' }
        : { key, dir: numeric && key !== 'index' ? 'desc' : 'asc' };
    this.applySort();
    this.events.onSort(this.sort);
  }

  private applySort(): void {
    const col = COLUMNS.find((c) => c.key === this.sort.key) ?? COLUMNS[0]!;
    const sign = this.sort.dir === 'asc' ? 1 : -1;
    const keyed = this.layers.map((l) => ({ l, v: col.value(l) }));
    keyed.sort((a, b) => {
      // unknown values last in both directions; ties keep graph order
      if (a.v === null || b.v === null) return a.v === b.v ? a.l.index - b.l.index : a.v === null ? 1 : -1;
      return sign * compare(a.v, b.v) || a.l.index - b.l.index;
    });
    this.order = keyed.map((k) => this.rows.get(k.l.name)!);
    const frag = document.createDocumentFragment();
    for (const row of this.order) frag.appendChild(row);
    this.tbody.replaceChildren(frag);
    this.updateSortIndicators();
    this.syncTabStop();
  }

  private updateSortIndicators(): void {
    for (const [key, th] of this.headers) {
      const active = key === this.sort.key;
      th.setAttribute('aria-sort', active ? (this.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none');
      const ind = th.querySelector('.sort-indicator');
      if (ind) ind.textContent = active ? (this.sort.dir === 'asc' ? ' ▲' : ' ▼') : '';
    }
  }

  private syncSelection(): void {
    for (const row of this.tbody.querySelectorAll('tr[aria-selected="true"]')) {
      row.setAttribute('aria-selected', 'false');
    }
    if (this.selected !== null) this.rows.get(this.selected)?.setAttribute('aria-selected', 'true');
    this.syncTabStop();
  }

  /** Exactly one row is in the tab order: the selected one, else the first. */
  private syncTabStop(): void {
    const stop = (this.selected !== null ? this.rows.get(this.selected) : undefined) ?? this.order[0];
    for (const row of this.tbody.querySelectorAll('tr[tabindex="0"]')) (row as HTMLElement).tabIndex = -1;
    if (stop) stop.tabIndex = 0;
  }

  private rowOf(target: EventTarget | null): HTMLTableRowElement | null {
    return target instanceof Element ? target.closest('tr[data-layer]') : null;
  }

  private selectRow(row: HTMLTableRowElement, focus: boolean): void {
    const name = row.getAttribute('data-layer');
    if (name !== null) this.select(name, { focus });
  }

  private onKey(e: KeyboardEvent): void {
    const row = this.rowOf(e.target);
    if (!row) return;
    const i = this.order.indexOf(row);
    let next: HTMLTableRowElement | undefined;
    switch (e.key) {
      case 'Enter':
      case ' ':
        e.preventDefault();
        this.selectRow(row, true);
        return;
      case 'ArrowDown':
        next = this.order[i + 1];
        break;
      case 'ArrowUp':
        next = this.order[i - 1];
        break;
      case 'PageDown':
        next = this.order[Math.min(this.order.length - 1, i + 15)];
        break;
      case 'PageUp':
        next = this.order[Math.max(0, i - 15)];
        break;
      case 'Home':
        next = this.order[0];
        break;
      case 'End':
        next = this.order[this.order.length - 1];
        break;
      default:
        return;
    }
    e.preventDefault();
    if (next) {
      row.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
    }
  }
}
