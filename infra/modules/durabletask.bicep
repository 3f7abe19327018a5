// Durable Task Scheduler: the managed Durable Functions backend (orchestration history, work
// queues, timers) with its own monitoring dashboard, instead of queues, tables and blobs in the
// storage account. The app reaches it with its managed identity (Durable Task Data Contributor on
// the task hub, roles.bicep) through DURABLE_TASK_SCHEDULER_CONNECTION_STRING, which names the
// endpoint and `Authentication=ManagedIdentity` and carries no key. host.json selects the provider
// (`storageProvider.type: azureManaged`); docs/infrastructure.md, "Durable backend".

@description('Scheduler name, 3-64 letters, digits and hyphens.')
@minLength(3)
@maxLength(64)
param name string

param location string
param tags object

@description('Task hub name: must equal host.json extensions.durableTask.hubName (tests/infra checks it).')
param taskHubName string

@description('Consumption: billed per action, up to 500 actions/s, history kept up to 30 days. Dedicated: fixed price per capacity unit, 2,000 actions/s each, up to 3 units (3 for zone redundancy), history up to 90 days.')
@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string = 'Consumption'

@description('Capacity units (Dedicated only; Consumption has no capacity to size).')
@minValue(1)
@maxValue(3)
param capacity int = 1

@description('Source addresses the data plane accepts. The provider requires at least one entry (an empty list refuses everyone); Flex Consumption instances have no fixed egress address, so the default is every address: access is decided by Entra ID and the role assignment, this list is defence in depth once egress goes through a NAT gateway with a fixed address.')
@minLength(1)
param ipAllowlist array = [
  '0.0.0.0/0'
]

@description('Days a finished orchestration (completed, failed, terminated) is kept before the scheduler purges it. At most 30 on Consumption, 90 on Dedicated.')
@minValue(1)
@maxValue(90)
param retentionDays int = 30

var dedicated = skuName == 'Dedicated'

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    ipAllowlist: ipAllowlist
    sku: dedicated ? {
      name: skuName
      capacity: capacity
    } : {
      name: skuName
    }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
  properties: {}
}

// Finished orchestrations are purged by the service, so history does not grow without bound
// (with the Azure Storage backend nothing purges them: history tables only grow).
resource retention 'Microsoft.DurableTask/schedulers/retentionPolicies@2025-11-01' = {
  parent: scheduler
  name: 'default'
  properties: {
    retentionPolicies: [
      {
        retentionPeriodInDays: retentionDays
      }
    ]
  }
}

output name string = scheduler.name
output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
output dashboardUrl string = taskHub.properties.dashboardUrl
