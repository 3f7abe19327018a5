// Production: zone-redundant database with geo-redundant backups (35 days of point-in-time
// restore), Standard Redis, warm HTTP instances, 90 days of logs.
using 'main.bicep'

param environmentName = 'prod'
param alertEmail = readEnvironmentVariable('GP_ALERT_EMAIL')
param postgresAdminPassword = readEnvironmentVariable('POSTGRES_ADMIN_PASSWORD')
param postgresAppPassword = readEnvironmentVariable('POSTGRES_APP_PASSWORD')
param jwtSigningKeys = readEnvironmentVariable('JWT_SIGNING_KEYS', '')
param anthropicApiKey = readEnvironmentVariable('ANTHROPIC_API_KEY', '')
param openaiApiKey = readEnvironmentVariable('OPENAI_API_KEY', '')

// VNet integration + private endpoints (docs/infrastructure.md, Networking).
param privateNetworking = true

param storageSkuName = 'Standard_ZRS'
param postgresSkuName = 'Standard_D4ds_v5'
param postgresSkuTier = 'GeneralPurpose'
param postgresStorageSizeGB = 128
param postgresBackupRetentionDays = 35
param postgresGeoRedundantBackup = true
param postgresHighAvailability = true
param redisSkuName = 'Standard'
param redisCapacity = 2
param webPubSubSkuName = 'Standard_S1'
param webPubSubCapacity = 2
param functionMaximumInstanceCount = 100
param functionAlwaysReadyHttpInstances = 2
param logRetentionInDays = 90
param llmProvider = 'auto'
param logLevel = 'INFO'
param dbPoolMaxSize = 10
param corsAllowedOrigins = []

// Durable Functions backend: the Durable Task Scheduler (docs/infrastructure.md, "Durable backend").
param durableBackend = 'scheduler'
param durableTaskSchedulerSkuName = 'Dedicated'
param durableTaskSchedulerCapacity = 1
param durableTaskRetentionDays = 30
