// What the plan pages' buttons do, through the API.
import { apply, call } from './api.js';

// Start (and Restart): a new Migration of the plan, as MTV creates one.
export function startPlan(plan) {
  const name = `${plan.metadata.name}-${Date.now().toString(36)}`;
  return apply(
    [
      {
        apiVersion: 'forklift.konveyor.io/v1beta1',
        kind: 'Migration',
        metadata: { name, namespace: plan.metadata.namespace },
        spec: { plan: { name: plan.metadata.name, namespace: plan.metadata.namespace } },
      },
    ],
    { name: 'Start' },
  );
}

export function cancelVms(migration, vms) {
  return call('cancel', { namespace: migration.metadata.namespace, name: migration.metadata.name, vms });
}

// at: RFC 3339, or "" for now.
export function cutover(migration, at) {
  return call('cutover', { namespace: migration.metadata.namespace, name: migration.metadata.name, at });
}

// A failed VM again from the step that failed (ferryctl retry).
export function retryVm(migration, vm) {
  return call('retry', { namespace: migration.metadata.namespace, name: migration.metadata.name, vm });
}
