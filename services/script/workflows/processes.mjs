// The semantic part of the script dimension's BPMN files: what each process does, with no
// diagram. export.mjs turns these into bpmn-moddle objects, lays them out with
// bpmn-auto-layout, and saves them through bpmn-js's Modeler.
//
// A node: { id, kind (the BPMN element, camelCase), name, attrs (bpmn: and camunda:
// attributes, and quantumos: ones, which modelers keep as they are), io ({ inputs, outputs }:
// camunda:inputOutput), ext (call activity mappings: camunda:in / camunda:out), event (its
// event definition), attached (a boundary event's host), doc, script }.
// A flow: [id, source, target, name?, condition?]. A gateway's `default` names a flow.
// compensation: [association id, compensation boundary event, handler] — drawn in the
// Modeler the way a person draws it: an association from the boundary event to the handler.

const timer = (kind, value, id) => ({ timer: { kind, value, id } });
const message = (ref, id) => ({ message: { ref, id } });

const externalTask = (id, name, topic, more = {}) => ({
  id, kind: 'serviceTask', name, ...more,
  attrs: { 'camunda:type': 'external', 'camunda:topic': topic, ...(more.attrs || {}) },
});

const call = (id, name, method, { args, signature, ...more } = {}) => ({
  id, kind: 'serviceTask', name, ...more,
  attrs: {
    'quantumos:call': method,
    ...(args ? { 'quantumos:args': args } : {}),
    ...(signature ? { 'quantumos:signature': signature } : {}),
  },
});

// A dimension row of Manager1.GetStatus, positionally (D-Bus structs have no field names):
// 1 name, 2 bus_name, 3 unit, 4 expected, 5 present, 6 state, 7 healthy, 8 detail.
const NOT_OK = 'item[4] and not(item[5] and item[6] = "ready" and item[7])';

// ------------------------------------------------------------------------------------------
// Shipped in the image: /usr/share/quantumos/workflows/

const HEALTH = {
  file: '10-health-check.bpmn', dir: 'shipped', defid: '0hc1a2b',
  id: 'quantumos-health-check', name: 'Health check',
  doc: 'Asks steppps-mgr about every dimension; an expected dimension that is not ready and healthy goes to error recovery.',
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'Health check due' },
    call('Task_AskManager', 'Ask the manager about every dimension', 'org.quantumos.Manager1.GetStatus', {
      io: { outputs: [['overall', '${result[1]}'], ['unhealthy_rows', '${result[2][' + NOT_OK + ']}']] },
    }),
    { id: 'Gateway_AllHealthy', kind: 'exclusiveGateway', name: 'All healthy?', default: 'Flow_Unhealthy' },
    { id: 'EndEvent_Healthy', kind: 'endEvent', name: 'Healthy' },
    {
      id: 'Activity_Recover', kind: 'callActivity', name: 'Recover the first unhealthy dimension',
      attrs: { calledElement: 'quantumos-error-recovery' },
      ext: [
        ['in', { variables: 'all' }],
        ['in', { sourceExpression: '${unhealthy_rows[1][1]}', target: 'component' }],
        ['out', { source: 'outcome', target: 'recovery_outcome' }],
      ],
    },
    { id: 'EndEvent_Recovered', kind: 'endEvent', name: 'Recovery done' },
  ],
  flows: [
    ['Flow_0s1', 'StartEvent_1', 'Task_AskManager'],
    ['Flow_0s2', 'Task_AskManager', 'Gateway_AllHealthy'],
    ['Flow_Healthy', 'Gateway_AllHealthy', 'EndEvent_Healthy', 'yes', '${overall == "ok" || count(unhealthy_rows) == 0}'],
    ['Flow_Unhealthy', 'Gateway_AllHealthy', 'Activity_Recover', 'no'],
    ['Flow_0s3', 'Activity_Recover', 'EndEvent_Recovered'],
  ],
};

const RECOVERY = {
  file: '20-error-recovery.bpmn', dir: 'shipped', defid: '0er7c3d',
  id: 'quantumos-error-recovery', name: 'Error recovery',
  doc: 'Detect, assess severity, then retry, restart the component through steppps-mgr, or escalate to the operator. Started with variable `component` (a dimension name), or by the message quantumos.recover.',
  messages: [['Message_Recover', 'quantumos.recover']],
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'Recovery requested' },
    { id: 'StartEvent_Message', kind: 'startEvent', name: 'quantumos.recover', event: message('Message_Recover', 'MessageEventDefinition_0r1') },
    { id: 'Gateway_Merge', kind: 'exclusiveGateway' },
    call('Task_Detect', "Detect: read the component's status", 'org.quantumos.Manager1.GetStatus', {
      io: { outputs: [['row', '${result[2][item[1] == component][1]}'], ['checks', '${if is defined(checks) then checks + 1 else 1}']] },
    }),
    { id: 'Gateway_Severity', kind: 'exclusiveGateway', name: 'Assess severity', default: 'Flow_Escalate' },
    { id: 'EndEvent_Fine', kind: 'endEvent', name: 'Healthy again' },
    { id: 'Event_WaitRetry', kind: 'intermediateCatchEvent', name: 'Wait before checking again', event: timer('timeDuration', 'PT5S', 'TimerEventDefinition_0w1') },
    call('Task_Restart', 'Restart the component', 'org.quantumos.Manager1.Restart', {
      args: '[component]', signature: 's',
      io: { outputs: [['restarts', '${if is defined(restarts) then restarts + 1 else 1}']] },
    }),
    {
      id: 'Event_RestartRefused', kind: 'boundaryEvent', name: 'Refused', attached: 'Task_Restart',
      event: { error: { id: 'ErrorEventDefinition_0x1', codeVariable: 'restart_error', messageVariable: 'restart_message' } },
    },
    { id: 'Event_WaitRestart', kind: 'intermediateCatchEvent', name: 'Give it time to start', event: timer('timeDuration', 'PT5S', 'TimerEventDefinition_0w2') },
    { id: 'Task_Escalate', kind: 'userTask', name: 'Escalate to the operator', attrs: { 'camunda:assignee': 'root' } },
    { id: 'EndEvent_Escalated', kind: 'endEvent', name: 'Escalated' },
  ],
  flows: [
    ['Flow_0a', 'StartEvent_1', 'Gateway_Merge'],
    ['Flow_0b', 'StartEvent_Message', 'Gateway_Merge'],
    ['Flow_0c', 'Gateway_Merge', 'Task_Detect'],
    ['Flow_0d', 'Task_Detect', 'Gateway_Severity'],
    ['Flow_Fine', 'Gateway_Severity', 'EndEvent_Fine', 'healthy', '${row != null && row[5] && row[6] == "ready" && row[7]}'],
    ['Flow_Retry', 'Gateway_Severity', 'Event_WaitRetry', 'minor: retry', '${row != null && row[5] && checks < 3}'],
    ['Flow_Restart', 'Gateway_Severity', 'Task_Restart', 'gone: restart', '${row != null && !row[5] && (!is defined(restarts) || restarts < 2)}'],
    ['Flow_Escalate', 'Gateway_Severity', 'Task_Escalate', 'otherwise'],
    ['Flow_0e', 'Event_WaitRetry', 'Gateway_Merge'],
    ['Flow_0f', 'Task_Restart', 'Event_WaitRestart'],
    ['Flow_0g', 'Event_WaitRestart', 'Gateway_Merge'],
    ['Flow_0h', 'Event_RestartRefused', 'Task_Escalate'],
    ['Flow_0i', 'Task_Escalate', 'EndEvent_Escalated'],
  ],
};

const ROOT = {
  file: '90-root.bpmn', dir: 'shipped', defid: '0rt9x8y',
  id: 'quantumos-root', name: 'QuantumOS root orchestrator',
  doc: 'Started at boot by steppps-scriptd: checks every dimension through steppps-mgr, reads the inventory from space, starts monitoring (a health check every minute), then waits for requests (message quantumos.request with variable request = health-check | recover | stop).',
  messages: [['Message_Request', 'quantumos.request']],
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'System boot' },
    call('Task_CheckDimensions', 'Check every dimension', 'org.quantumos.Manager1.GetStatus', {
      io: {
        outputs: [
          ['overall', '${result[1]}'],
          ['dimensions_expected', '${count(result[2][item[4]])}'],
          ['dimensions_ready', '${count(result[2][item[4] and item[5] and item[6] == "ready" and item[7]])}'],
        ],
      },
    }),
    call('Task_Inventory', 'Read the inventory', 'org.quantumos.Space1.GetInventory', {
      io: { outputs: [['hostname', '${result[1][1]}'], ['architecture', '${result[1][6]}']] },
    }),
    { id: 'Gateway_Fork', kind: 'parallelGateway', name: 'Monitor and serve' },
    { id: 'Gateway_MonitorLoop', kind: 'exclusiveGateway' },
    { id: 'Event_MonitorTimer', kind: 'intermediateCatchEvent', name: 'Every minute', event: timer('timeDuration', 'PT1M', 'TimerEventDefinition_0m1') },
    {
      id: 'Activity_HealthCheck', kind: 'callActivity', name: 'Health check',
      attrs: { calledElement: 'quantumos-health-check' }, ext: [['in', { variables: 'all' }]],
    },
    { id: 'Gateway_RequestLoop', kind: 'exclusiveGateway' },
    { id: 'Event_Request', kind: 'intermediateCatchEvent', name: 'Request received', event: message('Message_Request', 'MessageEventDefinition_0q1') },
    { id: 'Gateway_Which', kind: 'exclusiveGateway', name: 'Which request?', default: 'Flow_Unknown' },
    {
      id: 'Activity_RequestedCheck', kind: 'callActivity', name: 'Health check now',
      attrs: { calledElement: 'quantumos-health-check' }, ext: [['in', { variables: 'all' }]],
    },
    {
      id: 'Activity_RequestedRecovery', kind: 'callActivity', name: 'Recover a component',
      attrs: { calledElement: 'quantumos-error-recovery' }, ext: [['in', { variables: 'all' }]],
    },
    { id: 'EndEvent_Stop', kind: 'endEvent', name: 'Stop orchestrating', event: { terminate: { id: 'TerminateEventDefinition_0t1' } } },
  ],
  flows: [
    ['Flow_1', 'StartEvent_1', 'Task_CheckDimensions'],
    ['Flow_2', 'Task_CheckDimensions', 'Task_Inventory'],
    ['Flow_3', 'Task_Inventory', 'Gateway_Fork'],
    ['Flow_4', 'Gateway_Fork', 'Gateway_MonitorLoop'],
    ['Flow_5', 'Gateway_MonitorLoop', 'Event_MonitorTimer'],
    ['Flow_6', 'Event_MonitorTimer', 'Activity_HealthCheck'],
    ['Flow_7', 'Activity_HealthCheck', 'Gateway_MonitorLoop'],
    ['Flow_8', 'Gateway_Fork', 'Gateway_RequestLoop'],
    ['Flow_9', 'Gateway_RequestLoop', 'Event_Request'],
    ['Flow_10', 'Event_Request', 'Gateway_Which'],
    ['Flow_Check', 'Gateway_Which', 'Activity_RequestedCheck', 'health-check', '${request == "health-check"}'],
    ['Flow_Recover', 'Gateway_Which', 'Activity_RequestedRecovery', 'recover', '${request == "recover"}'],
    ['Flow_Stop', 'Gateway_Which', 'EndEvent_Stop', 'stop', '${request == "stop"}'],
    ['Flow_Unknown', 'Gateway_Which', 'Gateway_RequestLoop', 'other'],
    ['Flow_11', 'Activity_RequestedCheck', 'Gateway_RequestLoop'],
    ['Flow_12', 'Activity_RequestedRecovery', 'Gateway_RequestLoop'],
  ],
};

// ------------------------------------------------------------------------------------------
// Test fixtures: services/script/tests/fixtures/

// Worker retries: an external task a worker fails twice, then completes.
const RETRY = {
  file: 'order-payment.bpmn', dir: 'fixtures', defid: '1op4q5r', id: 'order-payment', name: 'Order payment',
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'Order placed' },
    externalTask('Task_Charge', 'Charge the card', 'charge-card', { io: { inputs: [['amount_cents', '${amount * 100}']] } }),
    { id: 'EndEvent_Paid', kind: 'endEvent', name: 'Paid' },
  ],
  flows: [['Flow_1', 'StartEvent_1', 'Task_Charge'], ['Flow_2', 'Task_Charge', 'EndEvent_Paid']],
};

// The crash test, the bad-input test and the benchmark's persisted instances.
const CRASH = {
  file: 'two-steps.bpmn', dir: 'fixtures', defid: '1ts8u9v', id: 'two-steps', name: 'Two steps',
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'Start' },
    externalTask('Task_A', 'Step A', 'step-a'),
    externalTask('Task_B', 'Step B', 'step-b'),
    { id: 'EndEvent_1', kind: 'endEvent', name: 'Done' },
  ],
  flows: [['Flow_1', 'StartEvent_1', 'Task_A'], ['Flow_2', 'Task_A', 'Task_B'], ['Flow_3', 'Task_B', 'EndEvent_1']],
};

// Boundary error events: a D-Bus error (catch-all) and a BPMN error thrown by a worker.
const ERRORS = {
  file: 'stock-reservation.bpmn', dir: 'fixtures', defid: '1sr2w3x', id: 'stock-reservation', name: 'Stock reservation',
  errors: [['Error_OutOfStock', 'Out of stock', 'OUT_OF_STOCK']],
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'Reservation requested' },
    call('Task_RestartBogus', 'Restart a dimension that does not exist', 'org.quantumos.Manager1.Restart', {
      args: '["no-such-dimension"]', signature: 's',
    }),
    {
      id: 'Event_Refused', kind: 'boundaryEvent', name: 'Refused', attached: 'Task_RestartBogus',
      event: { error: { id: 'ErrorEventDefinition_1a', codeVariable: 'dbus_error', messageVariable: 'dbus_message' } },
    },
    externalTask('Task_Reserve', 'Reserve stock', 'reserve-stock'),
    {
      id: 'Event_OutOfStock', kind: 'boundaryEvent', name: 'Out of stock', attached: 'Task_Reserve',
      event: { error: { id: 'ErrorEventDefinition_1b', ref: 'Error_OutOfStock', codeVariable: 'error_code' } },
    },
    { id: 'EndEvent_Reserved', kind: 'endEvent', name: 'Reserved' },
    externalTask('Task_Notify', 'Tell the customer', 'notify-customer'),
    { id: 'EndEvent_Backorder', kind: 'endEvent', name: 'Back-ordered' },
  ],
  flows: [
    ['Flow_1', 'StartEvent_1', 'Task_RestartBogus'],
    ['Flow_2', 'Task_RestartBogus', 'Task_Reserve'],
    ['Flow_3', 'Event_Refused', 'Task_Reserve'],
    ['Flow_4', 'Task_Reserve', 'EndEvent_Reserved'],
    ['Flow_5', 'Event_OutOfStock', 'Task_Notify'],
    ['Flow_6', 'Task_Notify', 'EndEvent_Backorder'],
  ],
};

// Compensation: a failed payment undoes the two bookings, newest first.
const COMPENSATION = {
  file: 'trip-booking.bpmn', dir: 'fixtures', defid: '1tb6y7z', id: 'trip-booking', name: 'Trip booking',
  errors: [['Error_PaymentFailed', 'Payment failed', 'PAYMENT_FAILED']],
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'Trip requested' },
    externalTask('Task_BookFlight', 'Book the flight', 'book-flight'),
    { id: 'Event_CompFlight', kind: 'boundaryEvent', attached: 'Task_BookFlight', event: { compensate: { id: 'CompensateEventDefinition_1f' } } },
    externalTask('Task_CancelFlight', 'Cancel the flight', 'cancel-flight', { attrs: { isForCompensation: true } }),
    externalTask('Task_BookHotel', 'Book the hotel', 'book-hotel'),
    { id: 'Event_CompHotel', kind: 'boundaryEvent', attached: 'Task_BookHotel', event: { compensate: { id: 'CompensateEventDefinition_1h' } } },
    externalTask('Task_CancelHotel', 'Cancel the hotel', 'cancel-hotel', { attrs: { isForCompensation: true } }),
    externalTask('Task_Charge', 'Charge the traveller', 'charge-trip'),
    {
      id: 'Event_PaymentFailed', kind: 'boundaryEvent', name: 'Payment failed', attached: 'Task_Charge',
      event: { error: { id: 'ErrorEventDefinition_1p', ref: 'Error_PaymentFailed' } },
    },
    { id: 'EndEvent_Booked', kind: 'endEvent', name: 'Booked' },
    { id: 'Event_Undo', kind: 'intermediateThrowEvent', name: 'Undo the bookings', event: { compensate: { id: 'CompensateEventDefinition_1u' } } },
    { id: 'EndEvent_Cancelled', kind: 'endEvent', name: 'Trip cancelled' },
  ],
  flows: [
    ['Flow_1', 'StartEvent_1', 'Task_BookFlight'],
    ['Flow_2', 'Task_BookFlight', 'Task_BookHotel'],
    ['Flow_3', 'Task_BookHotel', 'Task_Charge'],
    ['Flow_4', 'Task_Charge', 'EndEvent_Booked'],
    ['Flow_5', 'Event_PaymentFailed', 'Event_Undo'],
    ['Flow_6', 'Event_Undo', 'EndEvent_Cancelled'],
  ],
  compensation: [
    ['Association_1f', 'Event_CompFlight', 'Task_CancelFlight'],
    ['Association_1h', 'Event_CompHotel', 'Task_CancelHotel'],
  ],
};

// A timer: the duration is an expression over the instance's variables.
const REMINDER = {
  file: 'reminder.bpmn', dir: 'fixtures', defid: '1rm3a4b', id: 'reminder', name: 'Reminder',
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'Reminder set' },
    { id: 'Event_Wait', kind: 'intermediateCatchEvent', name: 'Wait', event: timer('timeDuration', '${delay}', 'TimerEventDefinition_1r1') },
    externalTask('Task_Remind', 'Remind', 'remind'),
    { id: 'EndEvent_1', kind: 'endEvent', name: 'Reminded' },
  ],
  flows: [['Flow_1', 'StartEvent_1', 'Event_Wait'], ['Flow_2', 'Event_Wait', 'Task_Remind'], ['Flow_3', 'Task_Remind', 'EndEvent_1']],
};

// A parallel join waits for all three branches.
const PARALLEL = {
  file: 'server-provisioning.bpmn', dir: 'fixtures', defid: '1sp5c6d', id: 'server-provisioning', name: 'Server provisioning',
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'Server ordered' },
    { id: 'Gateway_Fork', kind: 'parallelGateway' },
    externalTask('Task_Disk', 'Partition the disk', 'partition-disk'),
    externalTask('Task_Net', 'Configure the network', 'configure-network'),
    externalTask('Task_Users', 'Create the users', 'create-users'),
    { id: 'Gateway_Join', kind: 'parallelGateway' },
    externalTask('Task_Handover', 'Hand the server over', 'hand-over'),
    { id: 'EndEvent_1', kind: 'endEvent', name: 'Server ready' },
  ],
  flows: [
    ['Flow_1', 'StartEvent_1', 'Gateway_Fork'],
    ['Flow_2', 'Gateway_Fork', 'Task_Disk'], ['Flow_3', 'Gateway_Fork', 'Task_Net'], ['Flow_4', 'Gateway_Fork', 'Task_Users'],
    ['Flow_5', 'Task_Disk', 'Gateway_Join'], ['Flow_6', 'Task_Net', 'Gateway_Join'], ['Flow_7', 'Task_Users', 'Gateway_Join'],
    ['Flow_8', 'Gateway_Join', 'Task_Handover'], ['Flow_9', 'Task_Handover', 'EndEvent_1'],
  ],
};

// Message correlation by key, raced by a timer on an event-based gateway.
const MESSAGES = {
  file: 'order-shipping.bpmn', dir: 'fixtures', defid: '1os7e8f', id: 'order-shipping', name: 'Order shipping',
  messages: [['Message_Paid', 'payment-received']],
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'Order accepted' },
    { id: 'Gateway_Wait', kind: 'eventBasedGateway' },
    {
      id: 'Event_Paid', kind: 'intermediateCatchEvent', name: 'Payment received',
      attrs: { 'quantumos:correlationKey': '${order_id}' }, event: message('Message_Paid', 'MessageEventDefinition_1m'),
    },
    { id: 'Event_Timeout', kind: 'intermediateCatchEvent', name: 'Ten minutes', event: timer('timeDuration', 'PT10M', 'TimerEventDefinition_1o1') },
    externalTask('Task_Ship', 'Ship the order', 'ship'),
    { id: 'EndEvent_Shipped', kind: 'endEvent', name: 'Shipped' },
    { id: 'EndEvent_Dropped', kind: 'endEvent', name: 'Order dropped' },
  ],
  flows: [
    ['Flow_1', 'StartEvent_1', 'Gateway_Wait'],
    ['Flow_2', 'Gateway_Wait', 'Event_Paid'], ['Flow_3', 'Gateway_Wait', 'Event_Timeout'],
    ['Flow_4', 'Event_Paid', 'Task_Ship'], ['Flow_5', 'Task_Ship', 'EndEvent_Shipped'],
    ['Flow_6', 'Event_Timeout', 'EndEvent_Dropped'],
  ],
};

// Refused at deploy: a script task (no code runs inside the engine).
const SCRIPTED = {
  file: 'legacy-script.bpmn', dir: 'fixtures', defid: '1ls9g0h', id: 'legacy-script', name: 'Legacy with a script task',
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'Start' },
    {
      id: 'Activity_0ugm2rk', kind: 'scriptTask', name: 'Compute the discount',
      attrs: { scriptFormat: 'groovy' }, script: "execution.setVariable('discount', 0.1)",
    },
    { id: 'EndEvent_1', kind: 'endEvent' },
  ],
  flows: [['Flow_1', 'StartEvent_1', 'Activity_0ugm2rk'], ['Flow_2', 'Activity_0ugm2rk', 'EndEvent_1']],
};

// ------------------------------------------------------------------------------------------
// Examples for users: examples/workflows/ in the repository, on the image in
// /usr/share/doc/quantumos/examples/workflows/ (docs/script.md walks through it).

// A restart that waits for a person's approval: the change-approval step an operator puts in
// front of anything that interrupts a service. Runs end to end from qos-ctl.
const APPROVAL = {
  file: 'restart-approval.bpmn', dir: 'examples', defid: '2ra1b2c',
  id: 'restart-approval', name: 'Restart a dimension after approval',
  doc: 'Started with variable `dimension` (a name from `qos-ctl status`). Reads its status, waits for a person to approve (complete the user task with approved=true or false), then restarts it through steppps-mgr and reads its status again.',
  nodes: [
    { id: 'StartEvent_1', kind: 'startEvent', name: 'Restart requested' },
    call('Task_Status', "Read the dimension's status", 'org.quantumos.Manager1.GetStatus', {
      io: { outputs: [['before', '${result[2][item[1] = dimension][1]}']] },
    }),
    { id: 'Gateway_Known', kind: 'exclusiveGateway', name: 'Known dimension?', default: 'Flow_Unknown' },
    { id: 'EndEvent_Unknown', kind: 'endEvent', name: 'No such dimension' },
    { id: 'Task_Approve', kind: 'userTask', name: 'Approve the restart', attrs: { 'camunda:assignee': 'operator' } },
    { id: 'Gateway_Approved', kind: 'exclusiveGateway', name: 'Approved?', default: 'Flow_Declined' },
    { id: 'EndEvent_Declined', kind: 'endEvent', name: 'Left running' },
    call('Task_Restart', 'Restart the dimension', 'org.quantumos.Manager1.Restart', { args: '[dimension]', signature: 's' }),
    {
      id: 'Event_Refused', kind: 'boundaryEvent', name: 'Refused', attached: 'Task_Restart',
      event: { error: { id: 'ErrorEventDefinition_2r1', codeVariable: 'restart_error', messageVariable: 'restart_message' } },
    },
    { id: 'EndEvent_Refused', kind: 'endEvent', name: 'Restart refused' },
    { id: 'Event_Settle', kind: 'intermediateCatchEvent', name: 'Give it time to start', event: timer('timeDuration', 'PT5S', 'TimerEventDefinition_2s1') },
    call('Task_Check', "Read the dimension's status again", 'org.quantumos.Manager1.GetStatus', {
      io: { outputs: [['after', '${result[2][item[1] = dimension][1]}']] },
    }),
    { id: 'EndEvent_Restarted', kind: 'endEvent', name: 'Restarted' },
  ],
  flows: [
    ['Flow_1', 'StartEvent_1', 'Task_Status'],
    ['Flow_2', 'Task_Status', 'Gateway_Known'],
    ['Flow_Known', 'Gateway_Known', 'Task_Approve', 'yes', '${before != null}'],
    ['Flow_Unknown', 'Gateway_Known', 'EndEvent_Unknown', 'no'],
    ['Flow_3', 'Task_Approve', 'Gateway_Approved'],
    ['Flow_Approved', 'Gateway_Approved', 'Task_Restart', 'yes', '${approved = true}'],
    ['Flow_Declined', 'Gateway_Approved', 'EndEvent_Declined', 'no'],
    ['Flow_4', 'Task_Restart', 'Event_Settle'],
    ['Flow_5', 'Event_Refused', 'EndEvent_Refused'],
    ['Flow_6', 'Event_Settle', 'Task_Check'],
    ['Flow_7', 'Task_Check', 'EndEvent_Restarted'],
  ],
};

export const PROCESSES = [
  HEALTH, RECOVERY, ROOT,
  RETRY, CRASH, ERRORS, COMPENSATION, REMINDER, PARALLEL, MESSAGES, SCRIPTED,
  APPROVAL,
];
