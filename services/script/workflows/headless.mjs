// bpmn-js's Modeler (the canvas of bpmn.io and Camunda Modeler) without a browser: its own
// bundle, dist/bpmn-modeler.development.js, run in a jsdom window. jsdom has no SVG geometry
// and no canvas, so the few calls bpmn-js makes to them are filled in below: transform
// matrices (exact), bounding boxes of rendered SVG (empty: only used to fit the view), and
// text measurement (an estimate of 12px Arial, which sizes the external labels it writes).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { JSDOM } from 'jsdom';

const require = createRequire(import.meta.url);

/** A bpmn-js Modeler in a fresh headless window; `options` as for `new BpmnJS(options)`. */
export function createModeler(options = {}) {
  const dom = new JSDOM('<!DOCTYPE html><html><body><div id="canvas"></div></body></html>', {
    pretendToBeVisual: true,
    runScripts: 'outside-only',
  });
  shim(dom.window);
  dom.window.eval(fs.readFileSync(require.resolve('bpmn-js/dist/bpmn-modeler.development.js'), 'utf8'));
  const container = dom.window.document.getElementById('canvas');
  return new dom.window.BpmnJS({ container, ...options });
}

/** The version of bpmn-js that createModeler runs. */
export const bpmnJsVersion = require('bpmn-js/package.json').version;

function shim(w) {
  class SVGMatrix {
    constructor(a = 1, b = 0, c = 0, d = 1, e = 0, f = 0) { Object.assign(this, { a, b, c, d, e, f }); }
    multiply(m) {
      return new SVGMatrix(
        this.a * m.a + this.c * m.b, this.b * m.a + this.d * m.b,
        this.a * m.c + this.c * m.d, this.b * m.c + this.d * m.d,
        this.a * m.e + this.c * m.f + this.e, this.b * m.e + this.d * m.f + this.f);
    }
    inverse() {
      const det = this.a * this.d - this.b * this.c;
      return new SVGMatrix(this.d / det, -this.b / det, -this.c / det, this.a / det,
        (this.c * this.f - this.d * this.e) / det, (this.b * this.e - this.a * this.f) / det);
    }
    translate(x, y) { return this.multiply(new SVGMatrix(1, 0, 0, 1, x, y)); }
    scale(s) { return this.multiply(new SVGMatrix(s, 0, 0, s, 0, 0)); }
    scaleNonUniform(x, y) { return this.multiply(new SVGMatrix(x, 0, 0, y, 0, 0)); }
    rotate(deg) {
      const r = (deg * Math.PI) / 180;
      return this.multiply(new SVGMatrix(Math.cos(r), Math.sin(r), -Math.sin(r), Math.cos(r), 0, 0));
    }
  }
  class SVGPoint {
    constructor() { this.x = 0; this.y = 0; }
    matrixTransform(m) {
      const p = new SVGPoint();
      p.x = m.a * this.x + m.c * this.y + m.e;
      p.y = m.b * this.x + m.d * this.y + m.f;
      return p;
    }
  }
  class SVGTransform {
    constructor() { this.matrix = new SVGMatrix(); this.type = 1; }
    setMatrix(m) { this.matrix = new SVGMatrix(m.a, m.b, m.c, m.d, m.e, m.f); }
    setTranslate(x, y) { this.matrix = new SVGMatrix(1, 0, 0, 1, x, y); this.type = 2; }
    setScale(x, y) { this.matrix = new SVGMatrix(x, 0, 0, y, 0, 0); this.type = 3; }
    setRotate(deg) { this.matrix = new SVGMatrix().rotate(deg); this.type = 4; }
  }
  class SVGTransformList {
    constructor(el) { this.el = el; this.items = []; }
    get numberOfItems() { return this.items.length; }
    getItem(i) { return this.items[i]; }
    clear() { this.items = []; this.sync(); }
    appendItem(t) { this.items.push(t); this.sync(); return t; }
    createSVGTransformFromMatrix(m) { const t = new SVGTransform(); t.setMatrix(m); return t; }
    consolidate() {
      if (!this.items.length) return null;
      const t = new SVGTransform();
      t.setMatrix(this.items.reduce((acc, i) => acc.multiply(i.matrix), new SVGMatrix()));
      this.items = [t];
      this.sync();
      return t;
    }
    sync() {
      if (!this.items.length) { this.el.removeAttribute('transform'); return; }
      const m = this.items.reduce((acc, i) => acc.multiply(i.matrix), new SVGMatrix());
      this.el.setAttribute('transform', `matrix(${m.a},${m.b},${m.c},${m.d},${m.e},${m.f})`);
    }
  }
  const lists = new WeakMap();
  Object.defineProperty(w.SVGElement.prototype, 'transform', {
    get() {
      if (!lists.has(this)) lists.set(this, { baseVal: new SVGTransformList(this) });
      return lists.get(this);
    },
  });
  const proto = w.SVGElement.prototype;
  proto.getBBox = function () { return { x: 0, y: 0, width: 0, height: 0 }; };
  proto.getCTM = function () {
    let m = new SVGMatrix();
    for (let n = this; n && n.transform; n = n.parentNode) {
      const t = n.transform.baseVal.items;
      if (t.length) m = t.reduce((acc, i) => acc.multiply(i.matrix), new SVGMatrix()).multiply(m);
    }
    return m;
  };
  proto.getScreenCTM = proto.getCTM;
  proto.getComputedTextLength = function () { return (this.textContent || '').length * 6; };
  proto.createSVGMatrix = () => new SVGMatrix();
  proto.createSVGTransform = () => new SVGTransform();
  proto.createSVGPoint = () => new SVGPoint();
  // Text is measured on a canvas: no canvas here, so an estimate of Arial at its size
  // (0.55 em a character, line height 1.2 em), which is what label bounds are made of.
  w.HTMLCanvasElement.prototype.getContext = function () {
    return {
      font: '12px Arial',
      measureText(text) {
        const size = parseFloat((/([0-9.]+)px/.exec(this.font) || [0, 12])[1]);
        return { width: text.length * size * 0.55, fontBoundingBoxAscent: size * 0.9, fontBoundingBoxDescent: size * 0.3 };
      },
    };
  };
  w.SVGMatrix = SVGMatrix;
  w.structuredClone = globalThis.structuredClone;
  w.CSS = { escape: (s) => String(s).replace(/[^a-zA-Z0-9_-]/g, (c) => '\\' + c) };
}
