// Staging: production shape at smaller scale, so deploys and restores are rehearsed here first.
using 'main.bicep'

param environmentName = 'staging'
param alertEmail = readEnvironmentVariable('GP_ALERT_EMAIL', 'oncall-staging@example.com')
param postgresAdminPassword = readEnvironmentVariable('POSTGRES_ADMIN_PASSWORD')
param postgresAppPassword = readEnvironmentVariable('POSTGRES_APP_PASSWORD')
param jwtSigningKeys = readEnvironmentVariable('JWT_SIGNING_KEYS', '')
param anthropicApiKey = readEnvironmentVariable('ANTHROPIC_API_KEY', '')
param openaiApiKey = readEnvironmentVariable('OPENAI_API_KEY', '')

// VNet integration + private endpoints (docs/infrastructure.md, Networking).
param privateNetworking = true

param storageSkuName = 'Standard_ZRS'
param postgresSkuName = 'Standard_D2ds_v5'
param postgresSkuTier = 'GeneralPurpose'
param postgresStorageSizeGB = 64
param postgresBackupRetentionDays = 14
param postgresGeoRedundantBackup = false
param postgresHighAvailability = false
param redisSkuName = 'Standard'
param redisCapacity = 1
param webPubSubSkuName = 'Standard_S1'
param webPubSubCapacity = 1
param functionMaximumInstanceCount = 40
param functionAlwaysReadyHttpInstances = 1
param logRetentionInDays = 30
param llmProvider = 'auto'
param logLevel = 'INFO'
param corsAllowedOrigins = []

// Durable Functions backend: the Durable Task Scheduler (docs/infrastructure.md, "Durable backend").
param durableBackend = 'scheduler'
param durableTaskSchedulerSkuName = 'Consumption'
param durableTaskRetentionDays = 30
