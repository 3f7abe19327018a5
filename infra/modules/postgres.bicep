// PostgreSQL Flexible Server: the system of record. Backups with a retention window give
// point-in-time restore to any second inside it; geo-redundant backups and zone-redundant high
// availability are parameters (on in prod). TLS is required on every connection. The connection
// URL is written straight into Key Vault and never leaves this module.

param name string
param location string
param tags object

@description('PostgreSQL major version.')
@allowed([
  '15'
  '16'
])
param version string = '16'

param skuName string = 'Standard_B1ms'

@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param skuTier string = 'Burstable'

@minValue(32)
param storageSizeGB int = 32

@description('Days of backups kept; point-in-time restore reaches back this far.')
@minValue(7)
@maxValue(35)
param backupRetentionDays int = 7

@description('Copy backups to the paired region (can only be chosen when the server is created).')
param geoRedundantBackup bool = false

@description('Zone-redundant standby with automatic failover (not available on Burstable).')
param highAvailability bool = false

param administratorLogin string

@secure()
param administratorLoginPassword string

param databaseName string = 'ghost_pirates'

@description('Vault receiving the database-url and postgres-admin-password secrets.')
param keyVaultName string

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: version
    administratorLogin: administratorLogin
    administratorLoginPassword: administratorLoginPassword
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Enabled'
      tenantId: subscription().tenantId
    }
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: backupRetentionDays
      geoRedundantBackup: geoRedundantBackup ? 'Enabled' : 'Disabled'
    }
    highAvailability: {
      mode: highAvailability ? 'ZoneRedundant' : 'Disabled'
    }
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource requireTls 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'require_secure_transport'
  properties: {
    value: 'ON'
    source: 'user-override'
  }
}

resource minTls 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'ssl_min_protocol_version'
  properties: {
    value: 'TLSv1.2'
    source: 'user-override'
  }
  dependsOn: [
    requireTls
  ]
}

resource logCheckpoints 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'log_checkpoints'
  properties: {
    value: 'ON'
    source: 'user-override'
  }
  dependsOn: [
    minTls
  ]
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// The Flex Consumption app has no fixed outbound address without VNet integration, so the
// firewall admits Azure services (0.0.0.0); the password and TLS still guard every connection.
resource allowAzureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource databaseUrlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:Rotated with the database password (docs/runbook.md); an expiry would take the app down.
  parent: vault
  name: 'database-url'
  properties: {
    value: 'postgresql://${uriComponent(administratorLogin)}:${uriComponent(administratorLoginPassword)}@${server.properties.fullyQualifiedDomainName}:5432/${database.name}?sslmode=require'
    contentType: 'text/uri-list'
  }
}

resource adminPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:Rotated by the runbook procedure; an expiry would block the next deploy.
  parent: vault
  name: 'postgres-admin-password'
  properties: {
    value: administratorLoginPassword
    contentType: 'text/plain'
  }
}

output id string = server.id
output name string = server.name
output fqdn string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
