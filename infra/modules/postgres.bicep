// PostgreSQL Flexible Server: the system of record. Backups with a retention window give
// point-in-time restore to any second inside it; geo-redundant backups and zone-redundant high
// availability are parameters (on in prod). TLS is required on every connection.
// The app connects as the least-privilege role appRoleName (DML only; created and granted by
// shared/db/roles.sql, which scripts/deploy.sh applies as the admin after the migrations); its
// connection URL is written straight into the app vault and never leaves this module. The admin
// password and the app role's password are kept for deploys only (migrations, roles), in the
// operations vault, which the app's identity cannot read.
// With privateNetworking the server is reached only through a private endpoint (main.bicep):
// public network access is disabled and no firewall rule admits Azure services.

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

@description('Login the app connects as (DML only): must match scripts/apply_db_roles.py.')
param appRoleName string = 'ghost_pirates_app'

@description('Password of appRoleName, held in the operations vault (postgres-app-password); deploy.sh generates it on the first deploy.')
@secure()
param appRolePassword string

@description('Private endpoint only: public network access disabled, no Azure-services firewall rule.')
param privateNetworking bool = false

@description('App vault: receives database-url, the only secret of this module the app reads.')
param keyVaultName string

@description('Operations vault (no role for the app): receives postgres-admin-password and postgres-app-password.')
param opsKeyVaultName string

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
      publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
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

// Without private networking (dev) the Flex Consumption app has no fixed outbound address, so
// the firewall admits Azure services (0.0.0.0); the password and TLS still guard every connection.
resource allowAzureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = if (!privateNetworking) {
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

resource opsVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: opsKeyVaultName
}

// What the app reads (DATABASE_URL): the least-privilege role, never the admin.
resource databaseUrlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:Rotated with the app role's password (docs/runbook.md); an expiry would take the app down.
  parent: vault
  name: 'database-url'
  properties: {
    value: 'postgresql://${uriComponent(appRoleName)}:${uriComponent(appRolePassword)}@${server.properties.fullyQualifiedDomainName}:5432/${database.name}?sslmode=require'
    contentType: 'text/uri-list'
  }
}

// Deploy-only: scripts/deploy.sh reuses it (apply_db_roles.py) so a deploy does not reset it.
resource appPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:Rotated by the runbook procedure; an expiry would block the next deploy.
  parent: opsVault
  name: 'postgres-app-password'
  properties: {
    value: appRolePassword
    contentType: 'text/plain'
  }
}

// Deploy-only: migrations and roles.sql run as the admin (scripts/deploy.sh step 3).
resource adminPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:Rotated by the runbook procedure; an expiry would block the next deploy.
  parent: opsVault
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
output administratorLogin string = administratorLogin
