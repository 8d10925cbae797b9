import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { FreezePreview } from '../src/protocol/messages';
import { h, setDisabled } from './dom';
import { PreviewPanel, type PreviewPanelEvents } from './preview';

export type FreezePanelEvents = PreviewPanelEvents;

/**
 * The Freeze BatchNorm preview (Keras-family formats): what freezing does, which layers it changes, then Apply
 * (an undoable edit) or Cancel. Nothing to verify: `trainable` does not change what the model computes.
 */
export class FreezePanel extends PreviewPanel {
  readonly element: HTMLElement;

  constructor(
    readonly preview: FreezePreview,
    private readonly editable: boolean,
    events: FreezePanelEvents,
  ) {
    super({ title: 'Freeze BatchNorm', applyTestId: 'freeze-apply-button', cancelTestId: 'freeze-cancel-button', previewId: preview.previewId, events });
    const n = preview.layers.length;
    const heading = h('h2', { attrs: { id: 'freeze-title', tabindex: -1 } }, 'Freeze BatchNorm — preview');
    const explain = h(
      'p',
      { class: 'explain muted' },
      'Freezing sets ',
      h('code', null, 'trainable: false'),
      ' on every BatchNormalization layer: Keras 2+ then runs it in inference mode even inside ',
      h('code', null, 'fit()'),
      ', normalizing with the stored moving mean and variance instead of batch statistics — the right setting for ' +
        'fine-tuning, and the only one that works at batch size 1; weights and inference outputs stay the same. ' +
        'For inference or export, Fold BatchNorm is better: it removes the layer and its compute.',
    );
    const list = h('ul', { class: 'plain' });
    for (const name of preview.layers) list.append(h('li', null, h('code', null, name)));


    this.element = h(
      'section',
      { class: 'panel freeze-preview', testid: 'freeze-preview', attrs: { 'aria-labelledby': 'freeze-title' } },
      heading,
      explain,
      h('h3', null, `Layers to freeze (${n})`),
      n ? list : h('p', { class: 'muted' }, 'Nothing to freeze: every BatchNorm layer is frozen already.'),
      preview.alreadyFrozen ? h('p', { class: 'muted' }, `${preview.alreadyFrozen} BatchNorm layer${preview.alreadyFrozen === 1 ? ' is' : 's are'} frozen already.`) : null,
      this.errorEl,
      h('div', { class: 'actions' }, this.applyButton, this.cancelButton),
    );
    this.updateButtons();
  }

  focus(): void {
    this.element.scrollIntoView({ block: 'nearest' });
    this.element.querySelector<HTMLElement>('#freeze-title')?.focus();
  }

  protected updateButtons(): void {
    const ok = this.preview.layers.length > 0 && this.editable;
    setDisabled(this.applyButton, !ok || this.busy);
    this.applyButton.title = ok ? 'Apply as an undoable edit' : !this.editable ? 'This file is read-only' : 'Nothing to freeze';
    setDisabled(this.cancelButton, this.busy);
  }
}
