/**
 * What the BatchNorm / Dropout audits and the memory planner need beyond the GraphView every format builds:
 * shapes of every output, the BatchNorm axis and Dropout semantics. Optional, so a format that does not
 * know something leaves it out and the analyses say "unknown" instead of guessing. The ONNX builder is
 * formats/onnx/doctor.ts (buildDoctorView).
 */
import type { GraphView, LayerView } from '../graph/graph';

export type Dims = (number | null)[];

export interface DropoutView {
  /** drop probability p; null when it is computed at run time */
  rate: number | null;
  /** 'inference': identity at inference; 'training': drops at random at inference; 'dynamic': a graph input decides */
  mode: 'inference' | 'training' | 'dynamic';
  /** ONNX opset < 7 only: the is_test attribute (0 when absent) */
  legacyIsTest?: number;
  /** output index of the mask, when the layer declares one */
  maskOutput?: number;
}

export interface DoctorLayerView extends LayerView {
  /** shapes of every output (outputShape is the first) */
  outputShapes?: (Dims | null)[];
  /** BatchNorm only: the normalized (channel) axis of its input; default 1 for ONNX (NCHW), -1 otherwise */
  axis?: number;
  /** Dropout only */
  dropout?: DropoutView;
}

export interface DoctorGraphView extends GraphView {
  layers: DoctorLayerView[];
  /** shapes of the graph inputs the shapes were inferred from (null dims: unknown) */
  inputShapes?: Record<string, Dims | null>;
}

/** the default channel axis of a BatchNorm in this format */
export function defaultBatchNormAxis(view: GraphView): number {
  return view.format === 'onnx' ? 1 : -1;
}

/** names of weights (constants) read by the layers */
export function weightNames(view: GraphView): Set<string> {
  const s = new Set<string>();
  for (const l of view.layers) for (const w of l.weights) s.add(w.name);
  return s;
}

/** value name -> the layer producing it, and value name -> the layers reading it */
export function wiring(view: GraphView): { producer: Map<string, DoctorLayerView>; readers: Map<string, DoctorLayerView[]>; outputs: Set<string> } {
  const producer = new Map<string, DoctorLayerView>();
  const readers = new Map<string, DoctorLayerView[]>();
  for (const l of view.layers as DoctorLayerView[]) {
    for (const o of l.outputs) if (o) producer.set(o, l);
    for (const i of l.inputs) {
      if (!i) continue;
      const list = readers.get(i);
      if (list) {
        if (!list.includes(l)) list.push(l);
      } else readers.set(i, [l]);
    }
  }
  return { producer, readers, outputs: new Set(view.summary.outputs.map((o) => o.name)) };
}

/** the activation (non-constant) inputs of a layer */
export function activationInputs(l: LayerView, weights: Set<string>): string[] {
  return l.inputs.filter((i) => i && !weights.has(i));
}
