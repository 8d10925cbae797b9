import '@vscode-elements/elements/dist/vscode-button/index.js';
import { h } from './dom';

export interface PreviewPanelEvents {
  onApply(previewId: number): void;
  onCancel(previewId: number): void;
}

/**
 * What the rewrite previews (fold, freeze, fix) share: the Apply / Cancel buttons, the error line, the busy
 * state. Subclasses build their content and decide in updateButtons when Apply is allowed.
 */
export abstract class PreviewPanel {
  protected readonly errorEl: HTMLElement;
  protected readonly applyButton: HTMLElementTagNameMap['vscode-button'];
  protected readonly cancelButton: HTMLElementTagNameMap['vscode-button'];
  protected busy = false;

  constructor(o: { title: string; applyTestId: string; cancelTestId: string; previewId: number; events: PreviewPanelEvents }) {
    this.errorEl = h('p', { class: 'error-text', attrs: { role: 'alert', hidden: true } });
    this.applyButton = h('vscode-button', { testid: o.applyTestId, attrs: { 'aria-label': `Apply ${o.title}` } }, 'Apply');
    this.applyButton.addEventListener('click', () => {
      if (!this.applyButton.disabled) o.events.onApply(o.previewId);
    });
    this.cancelButton = h('vscode-button', { testid: o.cancelTestId, attrs: { secondary: true, 'aria-label': `Cancel ${o.title}` } }, 'Cancel');
    this.cancelButton.addEventListener('click', () => o.events.onCancel(o.previewId));
  }

  setBusy(busy: boolean): void {
    this.busy = busy;
    this.updateButtons();
  }

  showError(message: string | null): void {
    this.errorEl.textContent = message ?? '';
    this.errorEl.hidden = message === null;
  }

  protected abstract updateButtons(): void;
}
