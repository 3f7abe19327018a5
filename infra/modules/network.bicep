// Private networking (deployed when privateNetworking is on: staging and prod). One VNet with:
//   - snet-app: delegated to Microsoft.App/environments, the Flex Consumption plan's outbound
//     VNet integration (Flex runs on Container Apps infrastructure; Microsoft.Web/serverFarms is
//     the delegation for Elastic Premium/Dedicated plans, not this one);
//   - snet-pe: the private endpoints of Key Vault, Storage (blob, queue, table), Redis, Web PubSub
//     and PostgreSQL (docs/infrastructure.md, "Networking").
// Both subnets carry an NSG (default rules: no inbound traffic from the Internet). The private DNS zones
// are linked to the VNet, so inside it the services' public names resolve to private addresses.

param name string
param location string
param tags object

@description('VNet address space; /16 leaves room for peering into a hub later.')
param addressPrefix string = '10.60.0.0/16'

@description('Flex Consumption integration subnet: /24 gives room for scale-out (one IP per instance).')
param appSubnetPrefix string = '10.60.0.0/24'

param privateEndpointSubnetPrefix string = '10.60.1.0/24'

// Private Link DNS zones, one per service sub-resource (Azure public cloud names).
var zoneNames = {
  keyVault: 'privatelink.vaultcore.azure.net'
  blob: 'privatelink.blob.${environment().suffixes.storage}'
  queue: 'privatelink.queue.${environment().suffixes.storage}'
  table: 'privatelink.table.${environment().suffixes.storage}'
  redis: 'privatelink.redis.cache.windows.net'
  webPubSub: 'privatelink.webpubsub.azure.com'
  postgres: 'privatelink.postgres.database.azure.com'
}

// No custom rules: the default ones admit inbound traffic only from the VNet and Azure's load
// balancer and deny the Internet; the NSG exists so rules can be added without a subnet change.
resource nsg 'Microsoft.Network/networkSecurityGroups@2024-01-01' = {
  name: '${name}-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'snet-app'
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'snet-pe'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          // NSG rules apply to the private endpoints too (not only to regular NICs).
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

resource keyVaultZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: zoneNames.keyVault
  location: 'global'
  tags: tags
}

resource blobZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: zoneNames.blob
  location: 'global'
  tags: tags
}

resource queueZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: zoneNames.queue
  location: 'global'
  tags: tags
}

resource tableZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: zoneNames.table
  location: 'global'
  tags: tags
}

resource redisZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: zoneNames.redis
  location: 'global'
  tags: tags
}

resource webPubSubZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: zoneNames.webPubSub
  location: 'global'
  tags: tags
}

resource postgresZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: zoneNames.postgres
  location: 'global'
  tags: tags
}

// Each zone is linked to the VNet (resolution only; private endpoints register their records
// through their DNS zone groups, not by VM auto-registration).
resource keyVaultZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: keyVaultZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource blobZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: blobZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource queueZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: queueZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource tableZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: tableZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource redisZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: redisZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource webPubSubZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: webPubSubZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource postgresZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: postgresZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

output vnetName string = vnet.name
output appSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'snet-app')
output privateEndpointSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'snet-pe')
output keyVaultZoneId string = keyVaultZone.id
output blobZoneId string = blobZone.id
output queueZoneId string = queueZone.id
output tableZoneId string = tableZone.id
output redisZoneId string = redisZone.id
output webPubSubZoneId string = webPubSubZone.id
output postgresZoneId string = postgresZone.id
