// Writes the script dimension's BPMN files through bpmn.io's own libraries:
//
//   processes.mjs (what each process does)
//     → bpmn-moddle + camunda-bpmn-moddle: the semantic model, serialized (moddle.toXML)
//     → bpmn-auto-layout: the diagram (bpmndi shapes, edges and waypoints)
//     → bpmn-js's Modeler, the canvas of bpmn.io and Camunda Modeler, run headless (jsdom):
//       imports the file, draws what the layout does not (compensation handlers moved under
//       their activity and connected by an association, as a person draws them), and saves it
//       with saveXML, setting exporter/exporterVersion on save as the modeler apps do;
//     → a second Modeler opens the saved file, which must import without a warning.
//
// Run from this directory: npm ci && node export.mjs. The output is committed; building and
// testing QuantumOS does not need node.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { BpmnModdle } from 'bpmn-moddle';
import { layoutProcess } from 'bpmn-auto-layout';
import { createModeler, bpmnJsVersion } from './headless.mjs';
import { PROCESSES } from './processes.mjs';

const require = createRequire(import.meta.url);
const camunda = require('camunda-bpmn-moddle/resources/camunda.json');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../../..');
const DIRS = {
  shipped: path.join(REPO, 'recipes/quantumos/usr/share/quantumos/workflows'),
  fixtures: path.join(REPO, 'services/script/tests/fixtures'),
  examples: path.join(REPO, 'examples/workflows'),
};

const NAMESPACES = {
  'xmlns:quantumos': 'http://quantumos.org/schema/bpmn/1.0',
  'xmlns:modeler': 'http://camunda.org/schema/modeler/1.0',
};
// Camunda Modeler reads these to open the file as a Camunda 7 diagram (its properties panel
// then shows topics, I/O mappings and call activity mappings).
const PLATFORM = {
  'modeler:executionPlatform': 'Camunda Platform',
  'modeler:executionPlatformVersion': '7.22.0',
};
const EXPORTER = 'bpmn-js (QuantumOS services/script/workflows/export.mjs)';

const ucfirst = (s) => s[0].toUpperCase() + s.slice(1);

/** The semantic model of one process (no diagram), as bpmn-moddle objects. */
function semantic(moddle, spec) {
  const create = (type, props) => moddle.create(type, props);
  const messages = Object.fromEntries((spec.messages || []).map(([id, name]) => [id, create('bpmn:Message', { id, name })]));
  const errors = Object.fromEntries(
    (spec.errors || []).map(([id, name, errorCode]) => [id, create('bpmn:Error', { id, name, errorCode })]),
  );
  const expression = (body) => create('bpmn:FormalExpression', { body });

  function eventDefinition(event) {
    if (event.timer) {
      return create('bpmn:TimerEventDefinition', { id: event.timer.id, [event.timer.kind]: expression(event.timer.value) });
    }
    if (event.message) {
      return create('bpmn:MessageEventDefinition', { id: event.message.id, messageRef: messages[event.message.ref] });
    }
    if (event.error) {
      const e = event.error;
      return create('bpmn:ErrorEventDefinition', {
        id: e.id,
        ...(e.ref ? { errorRef: errors[e.ref] } : {}),
        ...(e.codeVariable ? { 'camunda:errorCodeVariable': e.codeVariable } : {}),
        ...(e.messageVariable ? { 'camunda:errorMessageVariable': e.messageVariable } : {}),
      });
    }
    if (event.compensate) return create('bpmn:CompensateEventDefinition', { id: event.compensate.id });
    if (event.terminate) return create('bpmn:TerminateEventDefinition', { id: event.terminate.id });
    throw new Error(`unknown event definition ${JSON.stringify(event)}`);
  }

  function extensions(node) {
    const values = [];
    if (node.io) {
      const param = (type) => ([name, value]) => create(type, { name, value });
      values.push(create('camunda:InputOutput', {
        inputParameters: (node.io.inputs || []).map(param('camunda:InputParameter')),
        outputParameters: (node.io.outputs || []).map(param('camunda:OutputParameter')),
      }));
    }
    for (const [kind, props] of node.ext || []) values.push(create(`camunda:${ucfirst(kind)}`, props));
    return values.length ? create('bpmn:ExtensionElements', { values }) : undefined;
  }

  const elements = {};
  for (const node of spec.nodes) {
    const el = create(`bpmn:${ucfirst(node.kind)}`, { id: node.id, ...(node.name ? { name: node.name } : {}), ...(node.attrs || {}) });
    const ext = extensions(node);
    if (ext) el.extensionElements = ext;
    if (node.event) el.eventDefinitions = [eventDefinition(node.event)];
    if (node.script) el.script = node.script;
    elements[node.id] = el;
  }
  const flows = spec.flows.map(([id, source, target, name, condition]) => {
    const flow = create('bpmn:SequenceFlow', {
      id, ...(name ? { name } : {}), sourceRef: elements[source], targetRef: elements[target],
      ...(condition ? { conditionExpression: expression(condition) } : {}),
    });
    // What bpmn-js's modeling does when a flow is connected.
    elements[source].get('outgoing').push(flow);
    elements[target].get('incoming').push(flow);
    return flow;
  });
  const flowById = Object.fromEntries(flows.map((f) => [f.id, f]));
  for (const node of spec.nodes) {
    if (node.attached) elements[node.id].attachedToRef = elements[node.attached];
    if (node.default) elements[node.id].default = flowById[node.default];
  }

  const process = create('bpmn:Process', {
    id: spec.id, name: spec.name, isExecutable: true, 'camunda:historyTimeToLive': '180',
    flowElements: [...spec.nodes.map((n) => elements[n.id]), ...flows],
  });
  if (spec.doc) process.documentation = [create('bpmn:Documentation', { text: spec.doc })];
  const definitions = create('bpmn:Definitions', {
    id: `Definitions_${spec.defid}`,
    targetNamespace: 'http://bpmn.io/schema/bpmn',
    rootElements: [process, ...Object.values(messages), ...Object.values(errors)],
  });
  Object.assign(definitions.$attrs, NAMESPACES, PLATFORM);
  return definitions;
}

/**
 * Names the elements with external labels (events, gateways, named flows) again through the
 * Modeler, as typing the name does: bpmn-js then places each label and saves its bounds.
 */
function placeLabels(modeler) {
  const modeling = modeler.get('modeling');
  const registry = modeler.get('elementRegistry');
  for (const element of registry.filter((e) => e.label && e.businessObject.name)) {
    modeling.updateLabel(element, element.businessObject.name);
  }
}

/** Draws, in the Modeler, what the auto layout leaves out: compensation associations. */
function drawCompensation(modeler, spec) {
  const registry = modeler.get('elementRegistry');
  const modeling = modeler.get('modeling');
  const factory = modeler.get('bpmnFactory');
  for (const [id, boundaryId, handlerId] of spec.compensation || []) {
    const boundary = registry.get(boundaryId);
    const handler = registry.get(handlerId);
    const host = boundary.host;
    // Under the activity it undoes, clear of the boundary event.
    modeling.moveShape(handler, { x: host.x - handler.x, y: host.y + host.height + 60 - handler.y });
    const association = factory.create('bpmn:Association', { id, associationDirection: 'One' });
    modeling.connect(boundary, handler, { type: 'bpmn:Association', businessObject: association });
  }
}

async function main() {
  const moddle = new BpmnModdle({ camunda });
  const modeler = createModeler({ moddleExtensions: { camunda } });
  const checker = createModeler({ moddleExtensions: { camunda } });
  modeler.on('saveXML.start', ({ definitions }) => {
    definitions.set('exporter', EXPORTER);
    definitions.set('exporterVersion', bpmnJsVersion);
  });

  for (const spec of PROCESSES) {
    const { xml: semanticXml } = await moddle.toXML(semantic(moddle, spec), { format: true });
    const laidOut = await layoutProcess(semanticXml);
    const { warnings } = await modeler.importXML(laidOut);
    if (warnings.length) throw new Error(`${spec.file}: bpmn-js import: ${warnings.map((w) => w.message).join('; ')}`);
    drawCompensation(modeler, spec);
    placeLabels(modeler);
    const { xml } = await modeler.saveXML({ format: true });
    // What a modeler opening the file sees: it must import without a warning.
    const reopened = await checker.importXML(xml);
    if (reopened.warnings.length) {
      throw new Error(`${spec.file}: reopening: ${reopened.warnings.map((w) => w.message).join('; ')}`);
    }
    const out = path.join(DIRS[spec.dir], spec.file);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${xml}\n`);
    console.log(path.relative(REPO, out));
  }
}

await main();
