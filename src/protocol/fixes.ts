/**
 * Names of the doctor's fixes (Finding.fix / Finding.fixes ids) for buttons, edit labels and messages, shared
 * by the host and the webview. Pure: no `vscode`, no DOM. Ids this table does not know still get a readable
 * name (the id itself), so a fix the core adds later shows up without breaking anything.
 */

const TITLES: Record<string, string> = {
  'fold-batchnorm': 'Fold BatchNorm',
  'freeze-batchnorm': 'Freeze BatchNorm',
  'fold-batchnorm-forward': 'Fold BatchNorm Forward',
  'batchnorm-to-affine': 'BatchNorm to Affine',
  'batchnorm-eval-mode': 'BatchNorm to Inference Mode',
  'remove-dropout': 'Remove Dropout',
  'set-dropout-rate': 'Set Dropout Rate',
  'replace-batchnorm-groupnorm': 'Replace BatchNorm with GroupNorm',
};

/** What each fix does, in one sentence (button tooltips). */
const DESCRIPTIONS: Record<string, string> = {
  'fold-batchnorm': 'Fold BatchNorm into the layer before it (exact; verified by running the model before and after).',
  'freeze-batchnorm': 'Set trainable: false on every BatchNorm, so Keras uses the stored statistics while fine-tuning.',
  'fold-batchnorm-forward': 'Fold BatchNorm into the layer(s) after it (exact when that layer has no zero padding; verified).',
  'batchnorm-to-affine': 'Replace a BatchNorm that cannot fold with one per-channel scale and shift (ONNX: Mul + Add; Keras: a 1x1 DepthwiseConv2D; exact; verified).',
  'batchnorm-eval-mode': 'Make a BatchNorm exported in training mode use its running statistics (changes the outputs on purpose).',
  'remove-dropout': 'Remove Dropout layers that are the identity at inference (exact; verified).',
  'set-dropout-rate': 'Change the rate of Dropout layers (a training setting; inference outputs stay the same).',
  'replace-batchnorm-groupnorm': 'Replace BatchNorm with GroupNorm for small-batch training (changes the function: fine-tune afterwards).',
};

/** "Remove Dropout" for 'remove-dropout'; unknown ids as they are. */
export function fixTitle(id: string): string {
  return TITLES[id] ?? id;
}

export function fixDescription(id: string): string {
  return DESCRIPTIONS[id] ?? `Apply the fix '${id}'.`;
}

/** The label of the undoable edit a fix makes, e.g. "Remove Dropout (2)". */
export function fixEditLabel(id: string, changed: number): string {
  return `${fixTitle(id)} (${changed})`;
}

/** Fixes that have their own preview in the editor (the toolbar's Fold / Freeze BatchNorm). */
export const TOOLBAR_FIXES: ReadonlySet<string> = new Set(['fold-batchnorm', 'freeze-batchnorm']);
