import type { MemoryEstimate, MemoryPlanReport, OptimizerKind } from '../src/core/types';
import { formatBytes, formatInt, formatShape } from '../src/protocol/format';
import type { PlannerSettings } from '../src/protocol/messages';
import { barChart } from './charts';
import { append, h } from './dom';

export interface PlannerEvents {
  requestPlan(settings: PlannerSettings): Promise<MemoryPlanReport | string>;
  onLayer(name: string): void;
}

/** What the planner's fields hold (persisted with the webview state). */
export interface PlannerFields {
  height: number | null;
  width: number | null;
  batch: number | null;
  gpuGiB: number;
  optimizer: OptimizerKind;
  dtypeBytes: 2 | 4;
  crops: string;
}

export const DEFAULT_PLANNER_FIELDS: PlannerFields = {
  height: null,
  width: null,
  batch: null,
  gpuGiB: 12,
  optimizer: 'adam',
  dtypeBytes: 4,
  crops: '224, 320, 512',
};

const GiB = 1024 ** 3;
const OPTIMIZERS: [OptimizerKind, string][] = [
  ['adam', 'Adam / AdamW'],
  ['sgd-momentum', 'SGD with momentum'],
  ['sgd', 'SGD'],
  ['none', 'none (frozen weights)'],
];

/** [N, C, H, W] (ONNX) or [N, H, W, C] (Keras, TF.js): where H and W are in a rank-4 image input. */
function spatialAxes(format: string): [number, number] {
  return format === 'onnx' ? [2, 3] : [1, 2];
}

/** "224, 320 512" -> [224, 320, 512]; null when something is not a positive whole number */
function parseCrops(text: string): number[] | null {
  const parts = text.split(/[\s,;x×]+/).filter((p) => p);
  const out: number[] = [];
  for (const p of parts) {
    const v = Number(p);
    if (!Number.isInteger(v) || v < 1 || v > 65_536) return null;
    out.push(v);
  }
  return out.slice(0, 8);
}

/**
 * The memory and batch-size planner: input size, batch, GPU memory, optimizer and dtype in; inference and
 * training memory (params, gradients, optimizer state, activations), the largest batch that fits, a
 * per-layer activation chart and crops vs the full image (the FCN trade-off: smaller crops, bigger batches)
 * out. Every change plans again on the host (the core re-infers the shapes at each size).
 */
export class PlannerPanel {
  readonly element: HTMLElement;
  private readonly form: HTMLElement;
  private readonly result: HTMLElement;
  private readonly errorEl: HTMLElement;
  private readonly inputs: {
    height: HTMLInputElement;
    width: HTMLInputElement;
    batch: HTMLInputElement;
    gpu: HTMLInputElement;
    optimizer: HTMLSelectElement;
    dtype: HTMLSelectElement;
    crops: HTMLInputElement;
  };
  private readonly spatialFields: HTMLElement;
  private report: MemoryPlanReport | null = null;
  private generation = 0;

  constructor(
    private fields: PlannerFields,
    private format: string,
    private readonly events: PlannerEvents,
    private readonly onFields: (f: PlannerFields) => void,
  ) {
    const num = (testid: string, label: string, attrs: Record<string, number | string>) =>
      h('input', { class: 'num-field', testid, attrs: { type: 'number', 'aria-label': label, ...attrs } });
    const select = (testid: string, label: string, options: [string, string][]) =>
      h('select', { class: 'select-field', testid, attrs: { 'aria-label': label } }, ...options.map(([v, t]) => h('option', { attrs: { value: v } }, t)));
    this.inputs = {
      height: num('planner-height', 'Input height', { min: 1, max: 65536, step: 1 }),
      width: num('planner-width', 'Input width', { min: 1, max: 65536, step: 1 }),
      batch: num('planner-batch', 'Batch size', { min: 1, max: 1048576, step: 1 }),
      gpu: num('planner-gpu', 'GPU memory in GiB', { min: 0.125, max: 4096, step: 'any' }),
      optimizer: select('planner-optimizer', 'Optimizer', OPTIMIZERS),
      dtype: select('planner-dtype', 'Activation dtype', [['4', 'float32'], ['2', 'float16 / bfloat16']]),
      crops: h('input', { class: 'text-field', testid: 'planner-crops', attrs: { type: 'text', 'aria-label': 'Crop sizes to compare, e.g. 224, 320, 512' } }),
    };
    const label = (text: string, el: HTMLElement, suffix?: string) => h('label', { class: 'field' }, h('span', null, text), el, suffix ? h('span', { class: 'muted' }, suffix) : null);
    this.spatialFields = h('span', { class: 'fields-group' }, label('H', this.inputs.height), label('W', this.inputs.width));
    this.form = h(
      'div',
      { class: 'fields planner-form' },
      this.spatialFields,
      label('Batch', this.inputs.batch),
      label('GPU memory', this.inputs.gpu, 'GiB'),
      label('Optimizer', this.inputs.optimizer),
      label('Activations', this.inputs.dtype),
      label('Crops', this.inputs.crops),
    );
    for (const el of Object.values(this.inputs)) el.addEventListener('change', () => this.onChange());
    this.errorEl = h('p', { class: 'error-text', attrs: { role: 'alert', hidden: true } });
    this.result = h('div', { class: 'planner-result' }, h('p', { class: 'muted' }, 'Planning…'));
    this.element = h(
      'section',
      { class: 'tab-panel planner', testid: 'planner', attrs: { 'aria-label': 'Memory and batch-size planner' } },
      this.form,
      this.errorEl,
      this.result,
    );
    this.fillInputs();
  }

  /** The model (or its format) changed: keep the fields, plan again. */
  setFormat(format: string): void {
    this.format = format;
  }

  private fillInputs(): void {
    const f = this.fields;
    const i = this.inputs;
    i.height.value = f.height === null ? '' : String(f.height);
    i.width.value = f.width === null ? '' : String(f.width);
    i.batch.value = f.batch === null ? '' : String(f.batch);
    i.gpu.value = String(f.gpuGiB);
    i.optimizer.value = f.optimizer;
    i.dtype.value = String(f.dtypeBytes);
    i.crops.value = f.crops;
  }

  /** Read the fields; marks invalid ones and returns null when any is invalid. */
  private readInputs(): PlannerFields | null {
    const i = this.inputs;
    let ok = true;
    const intOrNull = (el: HTMLInputElement, max: number): number | null => {
      const t = el.value.trim();
      if (t === '') {
        el.removeAttribute('aria-invalid');
        return null;
      }
      const v = Number(t);
      if (!Number.isInteger(v) || v < 1 || v > max) {
        el.setAttribute('aria-invalid', 'true');
        ok = false;
        return null;
      }
      el.removeAttribute('aria-invalid');
      return v;
    };
    const height = intOrNull(i.height, 65_536);
    const width = intOrNull(i.width, 65_536);
    const batch = intOrNull(i.batch, 1 << 20);
    const gpu = Number(i.gpu.value);
    if (!(gpu > 0 && gpu <= 4096)) {
      i.gpu.setAttribute('aria-invalid', 'true');
      ok = false;
    } else i.gpu.removeAttribute('aria-invalid');
    const crops = parseCrops(i.crops.value);
    if (crops === null) {
      i.crops.setAttribute('aria-invalid', 'true');
      ok = false;
    } else i.crops.removeAttribute('aria-invalid');
    if (!ok) return null;
    const optimizer = (OPTIMIZERS.find(([k]) => k === i.optimizer.value)?.[0] ?? 'adam') as OptimizerKind;
    return { height, width, batch, gpuGiB: gpu, optimizer, dtypeBytes: i.dtype.value === '2' ? 2 : 4, crops: i.crops.value };
  }

  private onChange(): void {
    const f = this.readInputs();
    if (!f) {
      this.showError('Enter positive whole numbers (crops: sizes separated by commas).');
      return;
    }
    this.fields = f;
    this.onFields(f);
    void this.load();
  }

  private showError(message: string | null): void {
    this.errorEl.textContent = message ?? '';
    this.errorEl.hidden = message === null;
  }

  async load(): Promise<void> {
    const gen = ++this.generation;
    const f = this.fields;
    const settings: PlannerSettings = {
      optimizer: f.optimizer,
      dtypeBytes: f.dtypeBytes,
      crops: parseCrops(f.crops) ?? [],
      budgetBytes: Math.round(f.gpuGiB * GiB),
      ...(f.height !== null ? { height: f.height } : {}),
      ...(f.width !== null ? { width: f.width } : {}),
      ...(f.batch !== null ? { batch: f.batch } : {}),
    };
    this.element.setAttribute('aria-busy', 'true');
    const r = await this.events.requestPlan(settings);
    if (gen !== this.generation) return;
    this.element.removeAttribute('aria-busy');
    if (typeof r === 'string') {
      this.showError(r);
      return;
    }
    this.showError(null);
    this.report = r;
    this.render(r);
  }

  redraw(): void {
    if (this.report) this.render(this.report);
  }

  private render(r: MemoryPlanReport): void {
    // fields left empty show what the model's own size gave (as placeholders, so they keep following the model)
    const image = Object.values(r.input_shapes).find((s) => s.length === 4);
    this.spatialFields.hidden = !image;
    if (image) {
      const [ah, aw] = spatialAxes(this.format);
      this.inputs.height.placeholder = String(image[ah]);
      this.inputs.width.placeholder = String(image[aw]);
    }
    this.inputs.batch.placeholder = String(r.batch_size);

    const inputs = Object.entries(r.input_shapes).map(([k, s]) => `${k} ${formatShape(s)}`).join(', ');
    const budget = r.budget;
    const maxBatch = budget
      ? h(
          'p',
          { class: 'max-batch' },
          'Largest batch in ',
          h('strong', null, formatBytes(budget.bytes)),
          ': ',
          h('strong', { testid: 'planner-max-batch', attrs: { 'data-value': budget.max_batch_training } }, formatInt(budget.max_batch_training)),
          ` for training (${OPTIMIZERS.find(([k]) => k === r.optimizer)?.[1] ?? r.optimizer}), `,
          h('strong', { testid: 'planner-max-batch-inference', attrs: { 'data-value': budget.max_batch_inference } }, formatInt(budget.max_batch_inference)),
          ' for inference.',
          budget.max_batch_training === 0 ? h('span', { class: 'error-text' }, ' Not even one sample fits for training.') : null,
        )
      : null;

    const rows = r.layers;
    const peakIndex = rows.findIndex((l) => l.layer === r.peak_layer);
    const layerText = (i: number, v: number, what: string) => {
      const l = rows[i];
      return l ? `${l.layer} (${l.op}, ${formatShape(l.output_shape)}): ${what} ${formatBytes(v)}` : '';
    };
    const live = rows.map((l) => l.live_bytes);
    const saved = rows.map((l) => l.saved_bytes);
    const charts = rows.length
      ? h(
          'div',
          { class: 'planner-charts' },
          h('h3', null, `Inference: live activation memory per layer (peak ${formatBytes(r.inference.activation_bytes)}${r.peak_layer ? ` at ${r.peak_layer}` : ''})`),
          barChart({
            values: live,
            label: `Live activation bytes per layer at inference; peak at ${r.peak_layer ?? 'unknown'}`,
            colorVar: '--vscode-charts-blue',
            highlight: new Set(peakIndex >= 0 ? [peakIndex] : []),
            left: rows[0]?.layer ?? '',
            right: rows[rows.length - 1]?.layer ?? '',
            describe: (i) => layerText(i, live[i] ?? 0, 'live'),
            onClick: (i) => rows[i] && this.events.onLayer(rows[i]!.layer),
            width: 720,
            testid: 'planner-chart-inference',
          }),
          h('h3', null, `Training: activation memory kept for backward per layer (total ${formatBytes(r.training.activation_bytes)})`),
          barChart({
            values: saved,
            label: 'Bytes each layer keeps for the backward pass',
            colorVar: '--vscode-charts-purple',
            left: rows[0]?.layer ?? '',
            right: rows[rows.length - 1]?.layer ?? '',
            describe: (i) => `${layerText(i, saved[i] ?? 0, 'keeps')}${rows[i]?.saved.length ? ` — ${rows[i]!.saved.join(', ')}` : ''}`,
            onClick: (i) => rows[i] && this.events.onLayer(rows[i]!.layer),
            width: 720,
            testid: 'planner-chart-training',
          }),
        )
      : null;

    this.result.replaceChildren();
    append(
      this.result,
      h('p', { class: 'muted' }, `Inputs ${inputs} · batch ${formatInt(r.batch_size)} · ${r.dtype_bytes * 8}-bit activations · ${formatInt(r.params)} params (${formatInt(r.trainable_params)} trainable)`),
      maxBatch ?? h('p', { class: 'muted' }, 'Set the GPU memory to see the largest batch that fits.'),
      h(
        'div',
        { class: 'estimates' },
        estimate('Inference', r.inference, false, 'planner-inference'),
        estimate('Training', r.training, true, 'planner-training'),
        h(
          'div',
          { class: 'estimate' },
          h('h3', null, 'Per sample'),
          kv([
            ['Inference', formatBytes(r.per_sample.inference_bytes)],
            ['Training', formatBytes(r.per_sample.training_bytes)],
            ['Fixed (inference)', formatBytes(r.fixed.inference_bytes)],
            ['Fixed (training)', formatBytes(r.fixed.training_bytes)],
          ]),
        ),
      ),
      charts ?? h('p', { class: 'muted' }, 'No layers.'),
      r.crops?.length ? renderCrops(r) : null,
      r.unknown_layers.length ? h('p', { class: 'warn-text' }, `Unknown output shape (counted as 0 bytes): ${r.unknown_layers.slice(0, 10).join(', ')}${r.unknown_layers.length > 10 ? ', …' : ''}`) : null,
      h('details', { class: 'notes-details' }, h('summary', null, 'What is counted'), h('ul', { class: 'plain' }, ...r.notes.map((n) => h('li', { class: 'small' }, n)))),
    );
  }
}

function kv(rows: [string, string][]): HTMLElement {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of rows) dl.append(h('dt', null, k), h('dd', null, v));
  return dl;
}

function estimate(title: string, e: MemoryEstimate, training: boolean, testid: string): HTMLElement {
  const rows: [string, string][] = [['Params', formatBytes(e.param_bytes)]];
  if (training) rows.push(['Gradients', formatBytes(e.gradient_bytes)], ['Optimizer state', formatBytes(e.optimizer_bytes)]);
  rows.push([training ? 'Activations kept' : 'Activations (peak)', formatBytes(e.activation_bytes)]);
  if (training) rows.push(['Backward workspace', formatBytes(e.workspace_bytes)]);
  return h('div', { class: 'estimate', testid }, h('h3', null, title, h('span', { class: 'total' }, ` ${formatBytes(e.total_bytes)}`)), kv(rows));
}

function renderCrops(r: MemoryPlanReport): HTMLElement {
  const crops = r.crops ?? [];
  const head = ['Crop', 'Pixels', 'Training / image', 'Inference / image', 'Max batch (training)', 'Pixels per step', 'Crops per image'];
  return h(
    'div',
    null,
    h('h3', null, 'Crops vs the full image'),
    h(
      'p',
      { class: 'muted small explain' },
      'A fully convolutional network trains on crops as well as on whole images: smaller crops fit bigger batches (better BatchNorm statistics), ' +
        'while the labelled pixels per step stay about the same; the full image gives the network its whole context.',
    ),
    h(
      'table',
      { class: 'delta crops', testid: 'planner-crops-table', attrs: { 'aria-label': 'Crops vs the full image' } },
      h('thead', null, h('tr', null, ...head.map((t) => h('th', { attrs: { scope: 'col' } }, t)))),
      h(
        'tbody',
        null,
        ...crops.map((c) =>
          h(
            'tr',
            c.full_image ? { class: 'full-image' } : null,
            h('th', { attrs: { scope: 'row' } }, `${c.size[0]}×${c.size[1]}${c.full_image ? ' (full image)' : ''}`),
            h('td', { class: 'num' }, formatInt(c.pixels)),
            h('td', { class: 'num' }, formatBytes(c.training_bytes_per_image)),
            h('td', { class: 'num' }, formatBytes(c.inference_bytes_per_image)),
            h('td', { class: 'num' }, c.max_batch_training === null ? '—' : formatInt(c.max_batch_training)),
            h('td', { class: 'num' }, c.pixels_per_step === null ? '—' : formatInt(c.pixels_per_step)),
            h('td', { class: 'num' }, formatInt(c.crops_per_image)),
          ),
        ),
      ),
    ),
  );
}
