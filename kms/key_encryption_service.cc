#include "kms/key_encryption_service.h"
